"""``python benchmarks/video_eval.py``: the video path, scored face by face on labelled 720p video.

Every accuracy figure of the photo path comes from still photos; a camera gives
video. This builds labelled video from labelled scene photos: each held-out
photo (``scenes-ilc2021`` and ``crowds-adityap27``, the side ``--split`` of
``models/splits.json``, other photos by the same stable hash) is placed in a
1280x720 frame and held for ``--hold`` frames while it zooms in slowly
(``--zoom``), its boxes moved with it; the frames are written to an MP4 and read
back, so the pipeline sees real compression. Then, on the same decoded frames:

- the **video path**: ``VideoAnalyzer`` with the command line's video defaults,
  frame after frame through the whole clip (each new photo is a scene cut);
- the **photo path**: ``Pipeline.analyse(still=True)`` on each scored frame alone.

Frames from the ``--warmup``-th of each photo on are scored: recall of the
labelled faces at least 40 and 20 px on their short side (IoU >= 0.4, one to
one), precision (a box that matches no labelled face counts as false; the sets
leave some far faces unlabelled, so this is a floor), label accuracy over the
found faces, accuracy counting misses as wrong, recall per class, the
confusion, and the time per frame. ``crowds-adityap27`` has no ``incorrect``
label (a mask worn wrong is filed under mask or no_mask there), so its rows
count an ``incorrect`` verdict as wrong: its label figures are a floor too.

    python benchmarks/video_eval.py --split val                 # choices are made on val
    python benchmarks/video_eval.py --split test --json out.json
    python benchmarks/video_eval.py --split val --mtcnn DIR     # a candidate face finder
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from detector.track import assign, iou_matrix  # noqa: E402
from detector.types import LABELS  # noqa: E402

SETS = ("scenes-ilc2021", "crowds-adityap27")
FRAME = (1280, 720)
MATCH_IOU = 0.4
SIZES = (20, 40)
CLIP_FPS = 12.0
Truth = list[tuple[tuple[float, float, float, float], str]]


@dataclass
class Shot:
    """One photo of a set, its labelled faces in its own pixels."""

    set: str
    file: str
    image: np.ndarray
    faces: Truth


def held_out_shots(data: Path, sets: tuple[str, ...], splits: Path, split: str, limit: int | None) -> list[Shot]:
    """The photos of ``split`` in each scene set, in name order (``limit`` per set)."""
    from training.lib.splits import read_held, scene_split

    held = read_held(splits)
    shots = []
    for name in sets:
        labels = json.loads((data / name / "labels.json").read_text())
        files = [f for f in sorted(labels) if scene_split(name, f, held) == split][:limit]
        for file in files:
            image = cv2.imread(str(data / name / "images" / file))
            if image is not None:
                shots.append(Shot(name, file, image, [(tuple(t["box"]), t["label"]) for t in labels[file]]))
    return shots


def place(shot: Shot, t: float, zoom: float) -> tuple[np.ndarray, Truth]:
    """The photo fitted into a 1280x720 frame, zoomed in by ``zoom * t`` about its centre, and its boxes moved along."""
    w, h = FRAME
    ih, iw = shot.image.shape[:2]
    scale = min(w / iw, h / ih) * (1 + zoom * t)
    dx, dy = (w - iw * scale) / 2, (h - ih * scale) / 2
    m = np.array([[scale, 0, dx], [0, scale, dy]], np.float32)
    frame = cv2.warpAffine(shot.image, m, FRAME, flags=cv2.INTER_LINEAR, borderValue=(110, 110, 110))
    boxes = [((x1 * scale + dx, y1 * scale + dy, x2 * scale + dx, y2 * scale + dy), label)
             for (x1, y1, x2, y2), label in shot.faces]
    return frame, boxes


def write_clip(shots: list[Shot], path: Path, hold: int, zoom: float, fps: float) -> list[Truth]:
    """The labelled clip as an MP4 at ``path``; the truth of each frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, FRAME)
    truths = []
    for shot in shots:
        for i in range(hold):
            frame, truth = place(shot, i / max(hold - 1, 1), zoom)
            writer.write(frame)
            truths.append(truth)
    writer.release()
    return truths


def decoded(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@dataclass
class Score:
    """Counts over the scored frames of one path on one set."""

    truth: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SIZES, 0))
    found: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SIZES, 0))
    boxes: int = 0
    true_boxes: int = 0
    confusion: dict[str, dict[str, int]] = field(
        default_factory=lambda: {t: dict.fromkeys((*LABELS, "not found"), 0) for t in LABELS})
    seconds: list[float] = field(default_factory=list)

    def add(self, truth: Truth, faces: list) -> None:
        """One frame: its labelled faces against the faces a path gave (anything with ``box`` and ``label``)."""
        gt = np.array([b for b, _ in truth], float).reshape(-1, 4)
        pairs = dict(assign(iou_matrix(gt, np.array([f.box for f in faces], float).reshape(-1, 4)), MATCH_IOU))
        self.boxes += len(faces)
        self.true_boxes += len(pairs)
        for i, (box, label) in enumerate(truth):
            side = min(box[2] - box[0], box[3] - box[1])
            for size in SIZES:
                if side >= size:
                    self.truth[size] += 1
                    self.found[size] += i in pairs
            if side >= max(SIZES):
                self.confusion[label][faces[pairs[i]].label if i in pairs else "not found"] += 1

    def report(self) -> dict:
        big = max(SIZES)
        found = sum(v for row in self.confusion.values() for k, v in row.items() if k != "not found")
        right = sum(self.confusion[t][t] for t in LABELS)
        out = {f"recall_{s}px": round(self.found[s] / self.truth[s], 4) if self.truth[s] else None for s in SIZES}
        out |= {"faces_40px": self.truth[big], "precision": round(self.true_boxes / self.boxes, 4) if self.boxes else None,
                "label_accuracy": round(right / found, 4) if found else None,
                "accuracy": round(right / self.truth[big], 4) if self.truth[big] else None,
                "recall_per_class": {t: round(self.confusion[t][t] / n, 4) if (n := sum(self.confusion[t].values())) else None
                                     for t in LABELS},
                "confusion": self.confusion}
        if self.seconds:
            ms = sorted(s * 1000 for s in self.seconds)
            out |= {"fps": round(len(ms) / sum(ms) * 1000, 1), "p50_ms": round(statistics.median(ms), 1),
                    "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1)}
        return out


def evaluate(frames: list[np.ndarray], truths: list[Truth], sets: list[str], scored: list[bool], config,
             photo_every: int) -> dict:
    """Both paths over the clip; per set and over all."""
    from detector.finders import FinderConfig
    from detector.pipeline import Pipeline, PipelineConfig
    from detector.video import VideoAnalyzer

    pipeline = Pipeline(config)
    analyzer = VideoAnalyzer(pipeline, fps=CLIP_FPS)
    video = {name: Score() for name in (*dict.fromkeys(sets), "all")}
    photo = {name: Score() for name in video}
    for i, (frame, truth, name) in enumerate(tqdm(list(zip(frames, truths, sets)), desc="video path", unit="frame")):
        start = time.perf_counter()
        faces = analyzer(frame)
        elapsed = time.perf_counter() - start
        if scored[i]:
            for key in (name, "all"):
                video[key].add(truth, faces)
                video[key].seconds.append(elapsed)
    still = Pipeline(PipelineConfig(faces=FinderConfig(model_dir=config.faces.model_dir)))  # the same nets
    chosen = [i for i, s in enumerate(scored) if s][::photo_every] if photo_every else []
    for i in tqdm(chosen, desc="photo path", unit="frame"):
        start = time.perf_counter()
        faces = still.analyse(frames[i], still=True)
        elapsed = time.perf_counter() - start
        for key in (sets[i], "all"):
            photo[key].add(truths[i], faces)
            photo[key].seconds.append(elapsed)
    return {"video": {k: v.report() for k, v in video.items()}, "photo": {k: v.report() for k, v in photo.items()}}


def table(result: dict) -> str:
    rows = ["| path | set | recall >= 40 px | recall >= 20 px | precision | label accuracy | accuracy "
            "| mask / incorrect / no_mask recall | FPS | p95 ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for path in ("video", "photo"):
        for name, r in result[path].items():
            if r["faces_40px"] == 0:
                continue
            per = " / ".join(str(r["recall_per_class"][t]) for t in LABELS)
            rows.append(f"| {path} | {name} | {r['recall_40px']} | {r['recall_20px']} | {r['precision']} | "
                        f"{r['label_accuracy']} | {r['accuracy']} | {per} | {r.get('fps')} | {r.get('p95_ms')} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sets", nargs="+", default=list(SETS))
    p.add_argument("--splits", type=Path, default=ROOT / "models" / "splits.json")
    p.add_argument("--split", choices=("val", "test"), default="val")
    p.add_argument("--limit", type=int, help="at most this many photos per set")
    p.add_argument("--hold", type=int, default=12, help="frames each photo is held for (default: 12)")
    p.add_argument("--zoom", type=float, default=0.08, help="zoom over a photo's frames (default: 0.08)")
    p.add_argument("--warmup", type=int, default=4, help="frames of each photo not scored (default: 4)")
    p.add_argument("--photo-every", type=int, default=2,
                   help="the photo path scores every Nth scored frame (default: 2; 0 skips it)")
    p.add_argument("--set", dest="changes", action="append", default=[], metavar="FIELD=VALUE",
                   help="a PipelineConfig field for the video path, e.g. detect_every=1 (repeatable)")
    p.add_argument("--mtcnn", type=Path, metavar="DIR",
                   help="a folder of candidate MTCNN nets (as training finetune_mtcnn --out writes them) for both paths")
    p.add_argument("--json", type=Path, help="write the result here")
    args = p.parse_args()
    for name in args.sets:
        if not (args.data / name / "labels.json").exists():
            print(f"error: no scene set at {args.data / name} (labels.json)", file=sys.stderr)
            return 2
    from detector.cli import build_parser, pipeline_config

    config = pipeline_config(build_parser().parse_args([]), video=True)
    for change in args.changes:
        key, value = change.split("=", 1)
        value = json.loads(value)
        if key == "search" and isinstance(value, dict):  # search={"bands": 1, "yunet": false}
            from detector.finders.search import SearchPlan

            value = SearchPlan(**value)
        setattr(config, key, value)
    if args.mtcnn:
        config.faces = dataclasses.replace(config.faces, model_dir=args.mtcnn)
    shots = held_out_shots(args.data, tuple(args.sets), args.splits, args.split, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        truths = write_clip(shots, Path(tmp) / "clip.mp4", args.hold, args.zoom, fps=CLIP_FPS)
        frames = decoded(Path(tmp) / "clip.mp4")
    sets = [s.set for s in shots for _ in range(args.hold)]
    scored = [i % args.hold >= args.warmup for i in range(len(frames))]
    result = {"split": args.split, "photos": len(shots), "frames": len(frames), "hold": args.hold, "zoom": args.zoom,
              "warmup": args.warmup, "changes": args.changes,
              **evaluate(frames, truths[:len(frames)], sets[:len(frames)], scored, config, args.photo_every)}
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
