"""Face-finder recall on held-out photos, and the false positives it pays for them.

Why: MTCNN was trained on bare faces; a mask hides the nose and mouth it
learned, and dataset photos are often tight crops. This measures, on the
honest 'test' split of ``training.lib.splits`` (one group per photo, near-duplicates
merged), the share of faces the detector's own code path finds:

* still photos (detect_still): recall per folder and per label, a photo
  counts as found when any face is reported;
* scenes-ilc2021 (plain detect, as for video frames): recall of labelled
  boxes at least ``min_face_size`` on their short side, matched at IoU >= 0.5;
* false positives: faces reported on scikit-image non-face samples and on
  random face-free crops of test scenes (detect_still, as any photo), and
  scene detections that overlap no labelled box (IoU < 0.3).

``--stock`` measures the package as shipped (thresholds 0.6/0.7/0.8, no
border retry, plain detect): the false-positive yardstick.

Usage: ``python -m training recall [--data ../shared/data] [--split test] [--json OUT] [--limit N]``
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.finders import FaceFinder, FinderConfig, detect_still, make_finder
from detector.track import iou_matrix
from training.lib.finder_photos import EvalSet, load_eval_set, nonface_images, read_rgb
from training.lib.splits import read_held

MATCH_IOU = 0.5
"""A labelled scene face is found by a detection overlapping it this much."""
FALSE_IOU = 0.3
"""A scene detection overlapping no labelled box this much is a false positive."""
STOCK = FinderConfig(thresholds=(0.6, 0.7, 0.8), min_score=0.0, nets="stock", still_borders=(), still_framed=None)


def _rate(hits: int, total: int) -> dict:
    return {"found": hits, "total": total, "recall": round(hits / total, 4) if total else None}


def still_recall(finder: FaceFinder, config: FinderConfig, stills: list[tuple[str, str, Path]], still: bool) -> dict:
    """Recall per folder and per label on single-face photos."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for folder, label, path in tqdm(stills, desc="photos", unit="img"):
        rgb = read_rgb(path)
        found = bool(detect_still(finder, rgb, config) if still else finder.detect(rgb))
        for key in (folder, f"label:{label}"):
            hits[key][0] += found
            hits[key][1] += 1
    return {key: _rate(*v) for key, v in sorted(hits.items())}


def scene_recall(finder: FaceFinder, config: FinderConfig, scenes: list[tuple[Path, list[dict]]],
                 match_iou: float = MATCH_IOU) -> dict:
    """Labelled-box recall per label and false positives per scene photo (plain detect)."""
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    false = 0
    for path, labels in tqdm(scenes, desc="scenes", unit="img"):
        boxes = np.array([b["box"] for b in labels], dtype=np.float64).reshape(-1, 4)
        dets = np.array([d.box for d in finder.detect(read_rgb(path))], dtype=np.float64).reshape(-1, 4)
        overlap = iou_matrix(boxes, dets)
        false += int((overlap.max(axis=0, initial=0.0) < FALSE_IOU).sum()) if len(dets) else 0
        for row, item in zip(overlap, labels):
            x1, y1, x2, y2 = item["box"]
            if min(x2 - x1, y2 - y1) < config.min_face_size:
                continue  # below the finder's configured face size: out of scope
            key = f"scenes:{item['label']}"
            hits[key][0] += bool(row.max(initial=0.0) >= match_iou)
            hits[key][1] += 1
    out = {key: _rate(*v) for key, v in sorted(hits.items())}
    out["scenes:false_positives"] = {"detections": false, "photos": len(scenes),
                                     "per_photo": round(false / max(len(scenes), 1), 4)}
    return out


def false_positives(finder: FaceFinder, config: FinderConfig, images: dict[str, list[np.ndarray]], still: bool) -> dict:
    """Faces reported on images that hold none, per image set."""
    out = {}
    for name, batch in images.items():
        counts = [len(detect_still(finder, rgb, config) if still else finder.detect(rgb))
                  for rgb in tqdm(batch, desc=f"non-face {name}", unit="img")]
        out[f"nonface:{name}"] = {"detections": int(sum(counts)), "images_with_face": int(np.count_nonzero(counts)),
                                  "images": len(counts)}
    return out


def evaluate(config: FinderConfig, data: EvalSet, still: bool = True, match_iou: float = MATCH_IOU) -> dict:
    """All figures for one finder configuration."""
    finder = make_finder("onnx", config)
    results = still_recall(finder, config, data.stills, still)
    results.update(scene_recall(finder, config, data.scenes, match_iou))
    results.update(false_positives(finder, config, nonface_images(data), still))
    return results


def print_table(results: dict) -> None:
    """One line per figure."""
    for key, value in results.items():
        if "recall" in value:
            print(f"{key:28s} recall {value['recall'] if value['recall'] is not None else '-':>7}  "
                  f"({value['found']}/{value['total']})")
        elif "per_photo" in value:
            print(f"{key:28s} FP     {value['detections']:>7}  ({value['per_photo']} per photo, {value['photos']} photos)")
        else:
            print(f"{key:28s} FP     {value['detections']:>7}  ({value['images_with_face']}/{value['images']} images)")


def config_from_args(args: argparse.Namespace) -> FinderConfig:
    """The configuration under test: project defaults, each CLI option overriding one knob."""
    if args.stock:
        return STOCK
    config = FinderConfig()
    if args.thresholds:
        config.thresholds = tuple(args.thresholds)
    if args.still_thresholds:
        config.still_thresholds = tuple(args.still_thresholds)
    if args.min_score is not None:
        config.min_score = args.min_score
    if args.nets:
        config.nets = args.nets
    config.model_dir = args.model_dir
    if args.borders is not None:  # one fill per border retry, the last repeating
        fills = (args.fill + [args.fill[-1]] * len(args.borders))[: len(args.borders)]
        config.still_borders = tuple(zip(args.borders, fills))
    return config


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m training recall", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="datasets root (default: %(default)s)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to measure")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--limit", type=int, help="at most N photos per folder (and N scene photos), seeded sample")
    parser.add_argument("--splits", type=Path,
                        help="a classifier's splits.json: measure its split (a finder refit with the same --splits)")
    parser.add_argument("--stock", action="store_true", help="the package as shipped (the false-positive yardstick)")
    parser.add_argument("--thresholds", type=float, nargs=3, help="per-stage thresholds (video and scenes)")
    parser.add_argument("--still-thresholds", type=float, nargs=3, help="per-stage thresholds for photos")
    parser.add_argument("--min-score", type=float, help="final score a face must reach")
    parser.add_argument("--nets", choices=("stock", "masked"), help="ONNX nets to load")
    parser.add_argument("--borders", type=float, nargs="*", help="border retries for photos, e.g. 0.25 0.5 1.0")
    parser.add_argument("--fill", nargs="+", default=["replicate"], choices=("replicate", "mean"),
                        help="fill per border retry (the last repeats)")
    parser.add_argument("--plain", action="store_true", help="plain detect on photos too (no retries)")
    parser.add_argument("--match-iou", type=float, default=MATCH_IOU,
                        help="IoU at which a scene detection finds a labelled face (default: %(default)s; "
                             "0.3 separates missed faces from box-shape mismatches)")
    parser.add_argument("--model-dir", type=Path, help="folder of the ONNX nets (default: models/mtcnn)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Measure, print, and optionally write JSON."""
    args = parse_args(argv)
    config = config_from_args(args)
    try:
        data = load_eval_set(args.data, args.split, args.limit, held=read_held(args.splits))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = evaluate(config, data, still=not (args.plain or args.stock), match_iou=args.match_iou)
    print(f"config: {config}")
    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"config": repr(config), "split": args.split, "limit": args.limit,
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
