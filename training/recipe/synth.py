"""``python -m training synth SRC DST``: masked faces painted on bare faces.

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
``training.recipe.crop`` crops like the real one. Those faces keep a crowd photo's
blur, light and pose, which no portrait has.

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
from detector.synth.masks import STATE_LABEL, STATES, MaskStyle, mask_polygon, paint_mask
from training.lib.datasets import FOLDER_LABELS
from training.lib.sheets import around, contact_sheet
from training.lib.splits import read_held, scene_split
from training.recipe.crop import scene_boxes

MIN_INSIDE = 0.8
"""Share of a painted mask's area that must lie inside the photo for the state to be painted.
On the 2124 bare faces of chandrika and prajnasb it leaves out 465 chin masks (22 %), 12 masks under
the nose and 1 worn mask: tight photos cut between mouth and chin (docs/decisions.md)."""


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
    landmarker; loaded once for every photo."""

    def __init__(self) -> None:
        self.finder, self.landmarker = make_finder("onnx", FinderConfig()), Landmarker()

    def __call__(self, image: np.ndarray) -> tuple[tuple[float, float, float, float], np.ndarray] | None:
        """(box, landmarks) of the largest face, or None where no face is found."""
        face = largest_still_face(self.finder, image)
        if face is None:
            return None
        return face.box, self.landmarker(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), face.box)


def bare_faces(src: Path) -> list[Path]:
    """Photos of bare faces: ``no_mask``-like subfolders if any, else every image in SRC."""
    subs = [p for p in src.iterdir() if p.is_dir() and FOLDER_LABELS.get(p.name) == "no_mask"] if src.is_dir() else []
    folders = subs or [src]
    return sorted(f for d in folders for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS)


def synthesize(
    src: Path, dst: Path, states: tuple[str, ...], seed: int, limit: int | None, min_inside: float = MIN_INSIDE,
    faces: LargestFace | None = None,
) -> tuple[int, int, Counter]:
    """Paint every state on every face found where the mask fits the photo (``min_inside``);
    returns (photos used, photos with no face, states left unpainted by state)."""
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
            if inside_share(mask_polygon(landmarks, state, style.drop), image.shape) < min_inside:
                outside[state] += 1
                continue
            out = paint_mask(image, landmarks, state, style, rng)
            folder = dst / STATE_LABEL[state]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{path.stem}__{state}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if len(sheet) < 48:
                x1, y1, x2, y2 = (int(v) for v in box)
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
    painted faces only, each with its ``state``), so ``training.recipe.crop`` crops it like the real one and a
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
    p = argparse.ArgumentParser(prog="python -m training synth", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of bare-face photos, a labelled folder (its no_mask part is used), "
                                          "or a scene set (images/ and labels.json: its no_mask faces are painted in place)")
    p.add_argument("dst", type=Path, help="output labelled folder (a scene set, for a scene set)")
    p.add_argument("--states", nargs="+", choices=STATES, default=list(STATES),
                   help=f"mask states to paint (default: {' '.join(STATES)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use at most this many photos")
    p.add_argument("--min-inside", type=float, default=MIN_INSIDE,
                   help=f"share of a mask that must lie inside the photo for it to be painted (default {MIN_INSIDE})")
    p.add_argument("--splits", type=Path, help="splits.json: of a scene set, paint only the photos it puts in train")
    return p


def bad_argument(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, in one line, or None."""
    for path in [args.src, *(p for p in (args.splits,) if p)]:
        if not path.exists():
            return f"no such file or folder: {path}"
    if not 0.0 <= args.min_inside <= 1.0:
        return f"--min-inside must be between 0 and 1, got {args.min_inside}"
    return None


def paint(args: argparse.Namespace) -> str:
    """Paints as the arguments say; returns the summary line."""
    if (args.src / "labels.json").exists():
        n, outside = synthesize_scenes(args.src, args.dst, tuple(args.states), args.seed, read_held(args.splits),
                                       args.min_inside)
        head = f"painted one of {', '.join(args.states)} on {n} bare scene faces into {args.dst}"
    else:
        used, missed, outside = synthesize(args.src, args.dst, tuple(args.states), args.seed, args.limit,
                                           args.min_inside)
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
