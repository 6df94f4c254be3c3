"""``python -m training full``: the whole training, from public photos to shipped models.

One command for what ``models/README.md`` reports, step by step:

1. ``training.recipe.synth``: masks painted on the bare faces of chandrika and prajnasb;
2. ``training.recipe.crop``: aligned grayscale crops of the real sets, the scenes and the painted faces;
3. ``training.recipe.compare``: one classifier per augmentation policy, held-out accuracy and time per policy;
4. ``training.recipe.train --policy WINNER --install``: classifier and visibility model, into ``models/``;
5. ``training.recipe.finetune_mtcnn``, two rounds: the face finder refit on the train side of that split,
   into ``models/mtcnn/`` (round 1's PNet, round 2's RNet and ONet, as shipped);
6. ``training.recipe.neck --install``: the neck model on the same crops and split;
7. ``training.recipe.quantize --install``: the three per-face nets in int8, calibrated on train-side photos,
   into ``models/int8/`` (what the detector runs);
8. ``training.recipe.evaluate``: the whole detector on the held-out photos and the held-out scene faces.

Each step is skipped when its output exists (``--force`` redoes it), so an interrupted run resumes.
TensorFlow's training is not bit-for-bit repeatable on CPU threads: a rerun gives sibling models,
within the run-to-run spread the model card reports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from training.lib.config import ConfigError, TrainConfig, load_config
from training.lib.datasets import DatasetError
from training.lib.splits import read_held

REAL_SETS = ("chandrika", "prajnasb", "maskedface-net", "scenes-ilc2021")
"""The real sets the shipped classifier was trained on; ``--add-set`` trains on more (``improper-mask``,
``crowds-adityap27``: tried, and not better on val, ``docs/decisions.md``)."""
BARE_FACE_SETS = ("chandrika", "prajnasb")
PHOTO_SETS = ("chandrika", "prajnasb", "maskedface-net")
EVALUATIONS = {"photos": PHOTO_SETS, "scenes": ("scenes-ilc2021",), "improper": ("improper-mask",),
               "crowds": ("crowds-adityap27",)}
"""Each held-out figure of the model card: one row per kind of source, so a new set never hides in an old figure."""


def step(done: Path, force: bool, name: str, work: Callable[[], object]) -> None:
    """Run one step unless ``done`` exists, so an interrupted run resumes where it stopped."""
    if done.exists() and not force:
        print(f"[skip] {name}: {done} exists")
        return
    print(f"[run] {name}")
    work()


def run_config(configs: Path, name: str, **changes) -> TrainConfig:
    """A shipped config file with this run's crops and folders."""
    return load_config(configs / name, **changes)


def make_crops(data: Path, work: Path, force: bool, real_sets: tuple[str, ...] = REAL_SETS) -> tuple[Path, Path]:
    """Steps 1-2: painted masks on bare faces, then crops of the real and the painted sets."""
    from training.lib.data import PAINTED_PREFIX
    from training.recipe.crop import crop_sets
    from training.recipe.synth import STATES, synthesize

    synth_dirs = [work / "synth" / f"{PAINTED_PREFIX}{name}" for name in BARE_FACE_SETS]
    for name, folder in zip(BARE_FACE_SETS, synth_dirs):
        step(folder / "contact_sheet.png", force, f"synth {name}",
             lambda name=name, folder=folder: synthesize(data / name, folder, STATES, seed=0, limit=None))
    real, painted = work / "crops_real", work / "crops_synth"
    step(real / "crops.csv", force, "crop real sets", lambda: crop_sets([data / n for n in real_sets], real))
    step(painted / "crops.csv", force, "crop painted faces", lambda: crop_sets(synth_dirs, painted))
    return real, painted


def refit_finder(data: Path, work: Path, splits: Path, force: bool) -> None:
    """Step 5: the two refit rounds of the shipped finder, then its nets into ``models/mtcnn``."""
    from detector.finders.mtcnn import DEFAULT_MODEL_DIR
    from training.recipe.export_mtcnn import TOLERANCE
    from training.recipe.finetune_mtcnn import RefitConfig
    from training.recipe.finetune_mtcnn import run as refit

    def checked(config: RefitConfig) -> None:
        worst = max(refit(config).values())
        if worst > TOLERANCE:
            raise DatasetError(f"a refit net's ONNX export strays {worst:.1e} from Keras (tolerance {TOLERANCE:.0e})")

    round1, round2 = work / "mtcnn_round1", work / "mtcnn_round2"
    step(round1 / "onet_masked.onnx", force, "finder round 1",
         lambda: checked(RefitConfig(data=data, splits=splits, out=round1)))
    step(round2 / "onet_masked.onnx", force, "finder round 2",
         lambda: checked(RefitConfig(data=data, splits=splits, out=round2, crops=6, negatives=40, epochs=16,
                                     mine=round1, nets=("rnet", "onet"))))
    for folder, net in ((round1, "pnet"), (round2, "rnet"), (round2, "onet")):
        shutil.copy(folder / f"{net}_masked.onnx", DEFAULT_MODEL_DIR / f"{net}_masked.onnx")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training full", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the public datasets (default: ../shared/data)")
    p.add_argument("--work", type=Path, default=Path("../runs"), help="where crops and runs go (default: ../runs)")
    p.add_argument("--force", action="store_true", help="redo steps whose output exists")
    p.add_argument("--policy", help="train this augmentation policy and skip comparing them all (step 3)")
    p.add_argument("--add-set", action="append", default=[], metavar="NAME",
                   help="also train on this set of --data (repeatable), e.g. improper-mask, crowds-adityap27")
    p.add_argument("--keep-finder", action="store_true",
                   help="keep the installed face finder (skip step 5), so a new classifier is judged on the same faces")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> Path:
    """Every step in order; the folder of the trained classifier. ConfigError or DatasetError on bad input."""
    from training.recipe import compare, evaluate, neck, quantize, train

    real_sets = (*REAL_SETS, *args.add_set)
    work, data = args.work.resolve(), args.data.resolve()
    real, painted = make_crops(data, work, args.force, real_sets)
    configs, crops = Path(__file__).resolve().parents[1] / "configs", [real, painted]
    if args.policy is None:
        compare_cfg = run_config(configs, "compare.json", crops=crops, out=work / "train")
        step(work / "compare" / "compare.md", args.force, "compare",
             lambda: compare.run(compare_cfg, list(compare.POLICIES), work / "compare"))
    winner = args.policy or compare.winner(json.loads((work / "compare" / "compare.json").read_text()))["policy"]
    config = run_config(configs, "full.json", crops=crops, out=work / "train", policy=winner)
    final = work / "train" / winner
    step(final / "metrics.json", args.force, f"train ({winner})", lambda: train.run(config, final, install=True))
    if not args.keep_finder:
        refit_finder(data, work, final / "splits.json", args.force)
    neck_cfg = run_config(configs, "neck.json", crops=crops, out=work / "train", splits=final / "splits.json")
    step(work / "train" / "neck" / "metrics.json", args.force, "neck",
         lambda: neck.run(neck_cfg, work / "train" / "neck", install=True))
    step(work / "int8" / quantize.REPORT, args.force, "quantize",
         lambda: quantize.run([data / n for n in real_sets], final / "splits.json", work / "int8", install=True))
    held = read_held(final / "splits.json")
    for name, sets in EVALUATIONS.items():
        if all((data / n).is_dir() for n in sets):  # a newer set this copy of the data may lack
            step(final / f"eval_{name}.json", args.force, f"evaluate {name}",
                 lambda sets=sets, name=name: evaluate.run([data / n for n in sets], held, "test",
                                                           final / f"eval_{name}.json", final / f"eval_{name}.png"))
    return final


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    real_sets = (*REAL_SETS, *args.add_set)
    if not all((args.data / name).is_dir() for name in real_sets):
        print(f"error: {args.data} lacks one of {', '.join(real_sets)} (see shared/data/README.md)", file=sys.stderr)
        return 2
    try:
        final = run(args)
    except (ConfigError, DatasetError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    work = args.work.resolve()
    print(f"done: models installed from {final}, {work / 'mtcnn_round2'}, {work / 'train' / 'neck'} and {work / 'int8'}; "
          f"figures in {final}/eval_*.json and {work / 'compare' / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
