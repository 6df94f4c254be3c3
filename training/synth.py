"""``python -m training.synth SRC DST``: masked faces painted on bare faces.

Real photos of masks worn wrong are scarce, so they are made: for each bare
face in SRC (a folder of photos, or the ``no_mask`` part of a labelled
folder), masks are painted by its dlib landmarks (``detector.synth.masks``) worn
correctly, under the nose and on the chin, each in a random colour, pattern
and shading so that no class can be recognised by colour. Writes
``DST/mask/<name>__worn.jpg``, ``DST/incorrect/<name>__under_nose.jpg``,
``DST/incorrect/<name>__on_chin.jpg`` and ``DST/contact_sheet.png``.

A scene set (``images/`` and ``labels.json``, as ``scenes-ilc2021``) is painted in
place instead: one random state on each of its bare labelled faces, on photos
``--splits`` puts in train, written as a scene set of its own that
``training.crop`` crops like the real one. Those faces keep a crowd photo's
blur, light and pose, which no portrait has.

``--states on_neck`` paints a mask pulled down onto the neck instead, for the
neck model only: the classifier's crop ends at the chin. Tried
and not used for the shipped neck model (models/HISTORY.md): painted bands do not
teach it real masks hanging in folds.

``--cloth DIR`` dresses a share of the masks in real cloth instead: swatches cut
by landmarks from the ``mask`` photos of a labelled folder (``--cloth-splits``
keeps only photos a split puts in train). Tried and not used for
the shipped model (models/HISTORY.md): it finds more real masks worn wrong but
calls more tight photos ``incorrect``.

A state is not painted where most of its mask would fall outside the photo
(``MIN_INSIDE``): on a photo cut at the chin, a mask "on the chin" is barely
there, and the picture would teach that a bare face cut by the photo's edge
is a mask worn wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.finders import FinderConfig, largest_still_face, make_finder
from detector.landmarks import Landmarker
from detector.sources import IMAGE_EXTS, SourceError, read_image
from detector.synth.masks import ALL_STATES, NECK_STATE, STATE_LABEL, STATES, MaskStyle, mask_polygon, paint_mask
from training.crop import scene_boxes
from training.datasets import FOLDER_LABELS
from training.sheets import around, contact_sheet
from training.splits import read_held, scene_split

MIN_INSIDE = 0.8
"""Share of a painted mask's area that must lie inside the photo for the state to be painted.
On the 2124 bare faces of chandrika and prajnasb it leaves out 465 chin masks (22 %), 12 masks under
the nose and 1 worn mask: tight photos cut between mouth and chin (models/HISTORY.md)."""


def inside_share(polygon: np.ndarray, shape: tuple[int, ...]) -> float:
    """Share of a polygon's area (image points, may reach outside) that lies inside an image of ``shape``."""
    h, w = shape[:2]
    x1, y1 = np.minimum(polygon.min(axis=0), 0)
    x2, y2 = np.maximum(polygon.max(axis=0), [w, h])
    canvas = np.zeros((y2 - y1 + 1, x2 - x1 + 1), np.uint8)
    cv2.fillPoly(canvas, [polygon - [x1, y1]], 1)
    total = int(canvas.sum())
    return float(canvas[-y1 : h - y1, -x1 : w - x1].sum()) / total if total else 0.0


class LargestFace:
    """The largest face of a photo and its 68 landmarks, found by the detector's own finder and
    landmarker; loaded once and shared by the cloth cutter and the painter."""

    def __init__(self) -> None:
        self.finder, self.landmarker = make_finder("onnx", FinderConfig()), Landmarker()

    def __call__(self, image: np.ndarray) -> tuple[tuple[float, float, float, float], np.ndarray] | None:
        """(box, landmarks) of the largest face, or None where no face is found."""
        face = largest_still_face(self.finder, image)
        if face is None:
            return None
        return face.box, self.landmarker(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), face.box)


def cloth_swatch(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The cloth of a worn mask: the box from mid-nose to below the mouth, between the jaw's
    inner points (4 and 12), where a worn mask is all there is. None if it leaves the photo
    or is under 16 px; landmarks locate the region under a mask too."""
    x1, x2 = landmarks[4, 0], landmarks[12, 0]
    y1 = landmarks[29, 1]
    y2 = landmarks[57, 1] + 0.5 * (landmarks[8, 1] - landmarks[57, 1])
    x1, y1, x2, y2 = (int(round(v)) for v in (x1, y1, x2, y2))
    h, w = image.shape[:2]
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h or min(x2 - x1, y2 - y1) < 16:
        return None
    return image[y1:y2, x1:x2].copy()


def cloth_swatches(folders: list[Path], splits: dict[str, str] | None, limit: int | None, seed: int,
                   faces: LargestFace) -> list[np.ndarray]:
    """Swatches from the ``mask`` photos of labelled folders (only those ``splits`` puts in
    train, when given, so no held-out photo lends its mask to training)."""
    photos = [(root, f) for root in folders for sub in sorted(root.iterdir())
              if sub.is_dir() and FOLDER_LABELS.get(sub.name) == "mask"
              for f in sorted(sub.iterdir()) if f.suffix.lower() in IMAGE_EXTS]
    if splits is not None:
        photos = [(r, f) for r, f in photos if splits.get(f"{r.name}/{f.parent.name}/{f.name}") == "train"]
    rng = np.random.default_rng(seed)
    photos = [photos[i] for i in sorted(rng.permutation(len(photos))[:limit])] if limit else photos
    swatches = []
    for _, path in tqdm(photos, desc="cloth", unit="img"):
        try:
            image = read_image(path)
        except SourceError:
            continue
        face = faces(image)
        swatch = cloth_swatch(image, face[1]) if face else None
        if swatch is not None:
            swatches.append(swatch)
    return swatches


def bare_faces(src: Path) -> list[Path]:
    """Photos of bare faces: ``no_mask``-like subfolders if any, else every image in SRC."""
    subs = [p for p in src.iterdir() if p.is_dir() and FOLDER_LABELS.get(p.name) == "no_mask"] if src.is_dir() else []
    folders = subs or [src]
    return sorted(f for d in folders for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS)


def synthesize(
    src: Path, dst: Path, states: tuple[str, ...], seed: int, limit: int | None, min_inside: float = MIN_INSIDE,
    swatches: list[np.ndarray] | None = None, cloth_share: float = 0.0, faces: LargestFace | None = None,
) -> tuple[int, int, Counter]:
    """Paint every state on every face found where the mask fits the photo (``min_inside``),
    a share ``cloth_share`` of them in a real cloth swatch; returns (photos used, photos with
    no face, states left unpainted by state)."""
    rng = np.random.default_rng(seed)
    faces = faces or LargestFace()
    photos = bare_faces(src)[:limit]
    if not photos:
        raise SourceError(f"no images in {src}")
    used, missed, outside, sheet, captions = 0, 0, Counter(), [], []
    for path in tqdm(photos, desc="synth", unit="img"):
        try:
            image = read_image(path)
        except SourceError:
            missed += 1
            continue
        face = faces(image)
        if face is None:
            missed += 1
            continue
        box, landmarks = face
        for state in states:
            style = MaskStyle.random(rng)
            if swatches and rng.random() < cloth_share:
                swatch = swatches[rng.integers(len(swatches))]
                style.cloth = swatch[:, ::-1] if rng.random() < 0.5 else swatch
            if inside_share(mask_polygon(landmarks, state, style.drop), image.shape) < min_inside:
                outside[state] += 1
                continue
            out = paint_mask(image, landmarks, state, style, rng)
            folder = dst / STATE_LABEL[state]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{path.stem}__{state}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if len(sheet) < 48:
                x1, y1, x2, y2 = (int(v) for v in box)
                y2 += (y2 - y1) if state == NECK_STATE else 0  # the neck, where that mask hangs
                sheet.append(around(out, (x1, y1, x2, y2), 0, 0))
                captions.append(state)
        used += 1
    if sheet:
        contact_sheet(sheet, captions, dst / "contact_sheet.png")
    return used, missed, outside


def synthesize_scenes(src: Path, dst: Path, states: tuple[str, ...], seed: int, held: dict[str, str] | None,
                      min_inside: float = MIN_INSIDE) -> tuple[int, Counter]:
    """Masks painted on the bare labelled faces of a scene set, in place, one random state each.

    Every other face painted comes from a clean portrait; these keep a crowd photo's blur, light and
    pose. DST is a scene set of its own (``images/`` under the same names, ``labels.json`` of the
    painted faces only, each with its ``state``), so ``training.crop`` crops it like the real one and a
    painted face keeps its photo's side of the split. With ``held``, only photos it puts in train.
    Returns (faces painted, states left unpainted)."""
    rng = np.random.default_rng(seed)
    labels = json.loads((src / "labels.json").read_text())
    files = [f for f in sorted(labels) if held is None or scene_split(src.name, f, held) == "train"]
    faces, out_labels, outside, sheet = LargestFace(), {}, Counter(), []
    for file in tqdm(files, desc=f"synth {src.name}", unit="img"):
        bare = [i for i, t in enumerate(labels[file]) if t["label"] == "no_mask"]
        if not bare:
            continue
        try:
            image = read_image(src / "images" / file)
        except SourceError:
            continue
        painted, gray = [], cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        boxes = scene_boxes(faces.finder, image, labels[file])
        for i in bare:
            if boxes[i] is None:
                continue
            landmarks = faces.landmarker(gray, boxes[i])
            state, style = str(rng.choice(states)), MaskStyle.random(rng)
            if inside_share(mask_polygon(landmarks, state, style.drop), image.shape) < min_inside:
                outside[state] += 1
                continue
            image = paint_mask(image, landmarks, state, style, rng)
            painted.append({"box": labels[file][i]["box"], "label": STATE_LABEL[state], "state": state})
        for face in painted[: max(0, 48 - len(sheet))]:  # with 30 % more each way: a chin mask shows below the box
            x1, y1, x2, y2 = face["box"]
            sheet.append((around(image, face["box"], 0.3 * (x2 - x1), 0.3 * (y2 - y1)), face["state"]))
        if painted:
            (dst / "images").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(dst / "images" / file), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            out_labels[file] = painted
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "labels.json").write_text(json.dumps(out_labels, indent=1))
    if sheet:
        contact_sheet([c for c, _ in sheet], [state for _, state in sheet], dst / "contact_sheet.png")
    return sum(len(v) for v in out_labels.values()), outside


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of bare-face photos, a labelled folder (its no_mask part is used), "
                                          "or a scene set (images/ and labels.json: its no_mask faces are painted in place)")
    p.add_argument("dst", type=Path, help="output labelled folder (a scene set, for a scene set)")
    p.add_argument("--states", nargs="+", choices=ALL_STATES, default=list(STATES),
                   help=f"mask states to paint (default: {' '.join(STATES)}; on_neck is for the neck model only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use at most this many photos")
    p.add_argument("--min-inside", type=float, default=MIN_INSIDE,
                   help=f"share of a mask that must lie inside the photo for it to be painted (default {MIN_INSIDE})")
    p.add_argument("--splits", type=Path, help="splits.json: of a scene set, paint only the photos it puts in train")
    p.add_argument("--cloth", type=Path, nargs="+", default=[],
                   help="labelled folder(s) whose mask photos lend real cloth swatches to the painted masks")
    p.add_argument("--cloth-share", type=float, default=0.7, help="share of masks in real cloth (default 0.7)")
    p.add_argument("--cloth-splits", type=Path, help="splits.json: take cloth only from photos it puts in train")
    p.add_argument("--cloth-limit", type=int, help="cut swatches from at most this many mask photos (a seeded sample)")
    return p


def bad_argument(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line, or None."""
    for path in [args.src, *args.cloth, *(p for p in (args.cloth_splits, args.splits) if p)]:
        if not path.exists():
            return f"no such file or folder: {path}"
    for path in args.cloth:
        if not path.is_dir():
            return f"--cloth wants a labelled folder, not a file: {path}"
    for name in ("min_inside", "cloth_share"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            return f"--{name.replace('_', '-')} must be between 0 and 1, got {getattr(args, name)}"
    return None


def paint(args: argparse.Namespace) -> str:
    """Paints as the arguments say; returns the summary line."""
    if (args.src / "labels.json").exists():
        n, outside = synthesize_scenes(args.src, args.dst, tuple(args.states), args.seed, read_held(args.splits),
                                       args.min_inside)
        head = f"painted one of {', '.join(args.states)} on {n} bare scene faces into {args.dst}"
    else:
        splits = read_held(args.cloth_splits)
        faces = LargestFace()
        swatches = cloth_swatches(args.cloth, splits, args.cloth_limit, args.seed, faces) if args.cloth else []
        if args.cloth and not swatches:
            raise SourceError(f"no mask photo with a usable face in {', '.join(map(str, args.cloth))}")
        used, missed, outside = synthesize(args.src, args.dst, tuple(args.states), args.seed, args.limit,
                                           args.min_inside, swatches, args.cloth_share, faces)
        head = f"painted {', '.join(args.states)} on {used} faces into {args.dst}; no face in {missed} photos"
    left = ", ".join(f"{n} {state}" for state, n in sorted(outside.items())) or "none"
    return f"{head}; left unpainted (mask outside the photo): {left}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = bad_argument(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        print(paint(args))
    except (SourceError, ValueError) as err:  # a bad labels.json is a ValueError too
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
