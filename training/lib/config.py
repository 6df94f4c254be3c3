"""A training run's JSON config: read, checked and turned into split crops.

One module for it because ``training.recipe.train``, ``training.recipe.compare``, ``training.fusion`` and
``training.recipe.neck`` all read the same file, and a bad value must be one error line in each of them.

Config keys (``configs/full.json`` is the shipped run): ``crops`` (folders),
``epochs``, ``min_epochs`` (no early stop before), ``batch_size``,
``learning_rate``, ``policy`` (a name in ``augment.POLICIES`` or a dict of
``AugmentConfig`` fields), ``width`` (classifier's first conv width, 16),
``input_size`` (classifier input side, ``MODEL_SIZE`` = 64, at most the crops' 96), ``seed``,
``parts_epochs``, ``out``; options measured and left off:
``schedule`` / ``ema`` / ``ema_momentum`` (``optimizer_and_callbacks``),
``balance`` / ``balance_power``, ``set_weights``, ``finetune_epochs`` /
``finetune_learning_rate``, ``init``, ``limit``, ``near_duplicate_bits``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from detector.align import CROP_SIZE, MODEL_SIZE
from training.lib.data import Arrays, load_splits
from training.lib.splits import NEAR_DUPLICATE_BITS, read_held


def config_splits(cfg: dict) -> dict[str, Arrays]:
    """The config's crops, split as it says: its ``splits`` file keeps the photos it names where they were."""
    held = read_held(Path(cfg["splits"])) if cfg.get("splits") else None
    bits = cfg.get("near_duplicate_bits", NEAR_DUPLICATE_BITS)
    return load_splits([Path(d) for d in cfg["crops"]], cfg.get("limit"), bits, held, cfg["input_size"])


def load_config(path: Path) -> dict | None:
    """The JSON config with paths made absolute (relative ones are from the repo root) and ``input_size`` set;
    None after an error line."""
    if not path.exists():
        print(f"error: no such config: {path}", file=sys.stderr)
        return None
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        print(f"error: {path} is not valid JSON: {err}", file=sys.stderr)
        return None
    base = Path(__file__).resolve().parents[2]
    cfg["crops"] = [str((base / d).resolve()) for d in cfg.get("crops", [])]
    cfg["out"] = str((base / cfg.get("out", "../runs/train")).resolve())
    if cfg.get("splits"):  # photos keep the sides this splits.json gave them
        cfg["splits"] = str((base / cfg["splits"]).resolve())
        try:
            read_held(Path(cfg["splits"]))
        except ValueError as err:
            print(f'error: the config\'s "splits": {err}', file=sys.stderr)
            return None
    side = cfg.setdefault("input_size", MODEL_SIZE)  # the one default, checked here, that the run then uses
    if not isinstance(side, int) or not 16 <= side <= CROP_SIZE:
        print(f'error: the config\'s "input_size" must be a whole number of pixels from 16 to {CROP_SIZE}, not {side!r}',
              file=sys.stderr)
        return None
    missing = [d for d in cfg["crops"] if not (Path(d) / "crops.csv").exists()]
    if missing or not cfg["crops"]:
        print(f"error: no crops.csv in {missing[0] if missing else 'the config'} (run python -m training crop first)",
              file=sys.stderr)
        return None
    return cfg
