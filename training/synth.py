"""``python -m training.synth SRC DST``: masked faces painted on bare faces.

Real photos of masks worn wrong are scarce, so they are made: for each bare
face in SRC (a folder of photos, or the ``no_mask`` part of a labelled
folder), masks are painted by its dlib landmarks (``detector.masks``) worn
correctly, under the nose and on the chin, each in a random colour, pattern
and shading so that no class can be recognised by colour. Writes
``DST/mask/<name>__worn.jpg``, ``DST/incorrect/<name>__under_nose.jpg``,
``DST/incorrect/<name>__on_chin.jpg`` and ``DST/contact_sheet.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.faces import FinderConfig, detect_still, make_finder
from detector.landmarks import Landmarker
from detector.masks import STATE_LABEL, STATES, MaskStyle, paint_mask
from detector.sources import IMAGE_EXTS, SourceError, read_image
from detector.types import largest
from training.datasets import FOLDER_LABELS
from training.sheets import contact_sheet


def bare_faces(src: Path) -> list[Path]:
    """Photos of bare faces: ``no_mask``-like subfolders if any, else every image in SRC."""
    subs = [p for p in src.iterdir() if p.is_dir() and FOLDER_LABELS.get(p.name) == "no_mask"] if src.is_dir() else []
    folders = subs or [src]
    return sorted(f for d in folders for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTS)


def synthesize(src: Path, dst: Path, states: tuple[str, ...], seed: int, limit: int | None) -> tuple[int, int]:
    """Paint every state on every face found; returns (photos used, photos with no face)."""
    rng = np.random.default_rng(seed)
    finder, landmarker = make_finder("onnx", FinderConfig()), Landmarker()
    photos = bare_faces(src)[:limit]
    if not photos:
        raise SourceError(f"no images in {src}")
    used, missed, sheet, captions = 0, 0, [], []
    for path in tqdm(photos, desc="synth", unit="img"):
        try:
            image = read_image(path)
        except SourceError:
            missed += 1
            continue
        found = detect_still(finder, cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
        if not found:
            missed += 1
            continue
        box = largest(found).box
        landmarks = landmarker(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), box)
        for state in states:
            out = paint_mask(image, landmarks, state, MaskStyle.random(rng), rng)
            folder = dst / STATE_LABEL[state]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{path.stem}__{state}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if len(sheet) < 48:
                x1, y1, x2, y2 = (int(v) for v in box)
                sheet.append(out[max(y1, 0) : y2, max(x1, 0) : x2])
                captions.append(state)
        used += 1
    if sheet:
        contact_sheet(sheet, captions, dst / "contact_sheet.png")
    return used, missed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.synth", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="folder of bare-face photos, or a labelled folder (its no_mask part is used)")
    p.add_argument("dst", type=Path, help="output labelled folder")
    p.add_argument("--states", nargs="+", choices=STATES, default=list(STATES), help="mask states to paint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="use at most this many photos")
    args = p.parse_args(argv)
    if not args.src.exists():
        print(f"error: no such folder: {args.src}", file=sys.stderr)
        return 2
    try:
        used, missed = synthesize(args.src, args.dst, tuple(args.states), args.seed, args.limit)
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"painted {len(args.states)} masks on each of {used} faces into {args.dst}; no face in {missed} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
