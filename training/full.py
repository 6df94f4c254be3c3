"""``python -m training.full``: the whole training, from public photos to shipped models.

One command for what ``models/README.md`` reports, step by step:

1. ``training.synth``: masks painted on the bare faces of chandrika and prajnasb;
2. ``training.crop``: aligned grayscale crops of the real sets, the scenes and the painted faces;
3. ``training.compare``: one classifier per augmentation policy, held-out accuracy and time per policy;
4. ``training.train --policy WINNER --install``: both models with the winning policy, into ``models/``;
5. ``training.evaluate``: the whole detector on the held-out photos and the held-out scene faces.

Each step is skipped when its output exists (``--force`` redoes it), so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REAL_SETS = ("chandrika", "prajnasb", "maskedface-net", "scenes-ilc2021")
BARE_FACE_SETS = ("chandrika", "prajnasb")
PHOTO_SETS = ("chandrika", "prajnasb", "maskedface-net")


def step(done: Path, force: bool, name: str, call, args: list[str]) -> None:
    """Run one module's main() unless ``done`` exists; stop the whole run on failure."""
    if done.exists() and not force:
        print(f"[skip] {name}: {done} exists")
        return
    print(f"[run] {name} {' '.join(args)}")
    code = call(args)
    if code:
        raise SystemExit(code)


def main(argv: list[str] | None = None) -> int:
    from training import compare, crop, evaluate, synth, train
    from training.data import PAINTED_PREFIX

    p = argparse.ArgumentParser(prog="python -m training.full", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the public datasets (default: ../shared/data)")
    p.add_argument("--work", type=Path, default=Path("../runs"), help="where crops and runs go (default: ../runs)")
    p.add_argument("--force", action="store_true", help="redo steps whose output exists")
    args = p.parse_args(argv)
    if not all((args.data / name).is_dir() for name in REAL_SETS):
        print(f"error: {args.data} lacks one of {', '.join(REAL_SETS)} (see shared/data/README.md)", file=sys.stderr)
        return 2
    work, data = args.work.resolve(), args.data.resolve()
    synth_dirs = [work / "synth" / f"{PAINTED_PREFIX}{name}" for name in BARE_FACE_SETS]
    for name, folder in zip(BARE_FACE_SETS, synth_dirs):
        step(folder / "contact_sheet.png", args.force, "synth", synth.main, [str(data / name), str(folder)])
    real, painted = work / "crops_real", work / "crops_synth"
    step(real / "crops.csv", args.force, "crop", crop.main, [*(str(data / n) for n in REAL_SETS), str(real)])
    step(painted / "crops.csv", args.force, "crop", crop.main, [*(str(d) for d in synth_dirs), str(painted)])
    configs = Path(__file__).resolve().parent / "configs"
    config, compare_cfg = work / "config.json", work / "compare_config.json"
    for name, target in (("full.json", config), ("compare.json", compare_cfg)):  # same settings, this run's paths
        settings = json.loads((configs / name).read_text())
        settings.update(crops=[str(real), str(painted)], out=str(work / "train"))
        target.write_text(json.dumps(settings, indent=2))
    step(work / "compare" / "compare.md", args.force, "compare", compare.main,
         ["--config", str(compare_cfg), "--out", str(work / "compare")])
    rows = json.loads((work / "compare" / "compare.json").read_text())
    winner = compare.winner(rows)["policy"]
    final = work / "train" / winner
    step(final / "metrics.json", args.force, f"train ({winner})", train.main,
         ["--config", str(config), "--policy", winner, "--out", str(final), "--install"])
    splits = ["--splits", str(final / "splits.json"), "--split", "test"]
    step(final / "eval_photos.json", args.force, "evaluate photos", evaluate.main,
         [*(str(data / n) for n in PHOTO_SETS), "--json", str(final / "eval_photos.json"),
          "--plot", str(final / "eval_photos.png"), *splits])
    step(final / "eval_scenes.json", args.force, "evaluate scenes", evaluate.main,
         [str(data / "scenes-ilc2021"), "--json", str(final / "eval_scenes.json"),
          "--plot", str(final / "eval_scenes.png"), *splits])
    print(f"done: models installed from {final}; figures in {final}/eval_*.json and {work / 'compare' / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
