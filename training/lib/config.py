"""A training run's JSON config as a typed ``TrainConfig``: read and checked once, then passed around.

One type for it because ``train``, ``compare`` and ``neck`` all read the same files
(``training/configs/*.json``; ``full.json`` is the shipped run) and ``full`` builds them
in code: a misspelt key or a wrong type is found when the file is read, as a
``ConfigError`` naming the file and the key, not hours later inside Keras.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from detector.align import CROP_SIZE, MODEL_SIZE
from training.lib.augment import AugmentConfig
from training.lib.data import Arrays, load_splits
from training.lib.splits import NEAR_DUPLICATE_BITS, read_held

REPO = Path(__file__).resolve().parents[2]
"""Relative paths in a config are from the repository root, wherever the command runs."""


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


@dataclass
class TrainConfig:
    """What one training run reads; every field has the default a config file may leave out."""

    crops: list[Path] = field(default_factory=list)
    """Crop folders (``training.recipe.crop``'s output, each with its ``crops.csv``)."""
    out: Path = REPO.parent / "runs" / "train"
    """Where runs go: ``train`` writes to ``out/POLICY``, ``neck`` to ``out/neck``."""
    splits: Path | None = None
    """A ``splits.json``: the photos it names keep their side, so a retrain is judged on the same photos."""
    policy: str | dict = "all"
    """A name in ``augment.POLICIES`` or a dict of ``AugmentConfig`` fields."""
    epochs: int = 10
    min_epochs: int = 0
    """No early stop before this epoch: val accuracy is noisy early on."""
    batch_size: int = 64
    learning_rate: float = 2e-3
    width: int = 16
    """The classifier's first convolution width."""
    input_size: int = MODEL_SIZE
    """The classifier's input side, at most the crops' ``CROP_SIZE``; the detector reads it back from the ONNX file."""
    seed: int = 0
    parts_epochs: int = 8
    """Epochs of the visibility model (0: not trained)."""
    neck_width: int = 16
    neck_epochs: int = 40
    limit: int | None = None
    """At most this many crops per folder (smoke runs)."""
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS
    """pHash distance that joins two crops in one split group (-1: no grouping by look)."""

    def __post_init__(self) -> None:
        self.crops = [Path(c) for c in self.crops]
        self.out = Path(self.out)
        self.splits = Path(self.splits) if self.splits else None

    @property
    def augment(self) -> AugmentConfig:
        """The augmentation this run trains with; ValueError for an unknown policy name."""
        return AugmentConfig.policy(self.policy) if isinstance(self.policy, str) else AugmentConfig(**self.policy)

    @property
    def policy_name(self) -> str:
        return self.policy if isinstance(self.policy, str) else "custom"

    def with_changes(self, **changes) -> TrainConfig:
        """A copy with some fields changed, checked as a file's would be."""
        return check(dataclasses.replace(self, **changes), "the changed config")

    def as_dict(self) -> dict:
        """JSON-ready, for a run's ``metrics.json``."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def split_crops(self) -> dict[str, Arrays]:
        """The crops, split as the config says: its ``splits`` file keeps the photos it names where they were."""
        held = read_held(self.splits) if self.splits else None
        return load_splits(self.crops, self.limit, self.near_duplicate_bits, held, self.input_size)


def from_dict(values: dict, where: str = "the config") -> TrainConfig:
    """A ``TrainConfig`` from a config file's values, relative paths from the repository root."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    values = dict(values)
    for key in ("out", "splits"):
        if values.get(key):
            values[key] = (REPO / values[key]).resolve()
    values["crops"] = [(REPO / c).resolve() for c in values.get("crops", [])]
    return check(TrainConfig(**values), where)


def check(config: TrainConfig, where: str) -> TrainConfig:
    """The config itself if every field has a usable value; ConfigError naming the first that has not."""
    whole = {"epochs", "min_epochs", "batch_size", "width", "seed", "parts_epochs", "neck_width", "neck_epochs",
             "input_size", "near_duplicate_bits"}
    for name in whole:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: {name!r} must be a whole number, not {value!r}")
    if not isinstance(config.learning_rate, (int, float)) or config.learning_rate <= 0:
        raise ConfigError(f"{where}: 'learning_rate' must be a positive number, not {config.learning_rate!r}")
    if not 16 <= config.input_size <= CROP_SIZE:
        raise ConfigError(f"{where}: 'input_size' must be a whole number of pixels from 16 to {CROP_SIZE}, "
                          f"not {config.input_size!r}")
    try:
        config.augment  # noqa: B018 - checks the policy once, here
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: 'policy': {err}") from None
    if config.splits is not None:
        try:
            read_held(config.splits)
        except ValueError as err:
            raise ConfigError(f"{where}: 'splits': {err}") from None
    missing = [d for d in config.crops if not (d / "crops.csv").exists()]
    if missing or not config.crops:
        raise ConfigError(f"{where}: no crops.csv in {missing[0] if missing else 'any crop folder'} "
                          "(run python -m training crop first)")
    return config


def load_config(path: Path, **changes) -> TrainConfig:
    """The config file at ``path`` with ``changes`` over its values, checked; ConfigError when it is missing,
    not JSON or not usable."""
    if not path.exists():
        raise ConfigError(f"no such config: {path}")
    try:
        values = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold one JSON object of settings")
    return from_dict({**values, **changes}, str(path))
