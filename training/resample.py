"""``python -m training.resample SRC... DST --far 40``: labelled photos as another camera would take them.

The held-out photos are tight, sharp crops; a door camera sees the same faces
far away (a few dozen soft pixels, grown to the crop's size) or close up on a
noisy high-resolution sensor. This writes a copy of labelled folders with
every photo made far (``--far SIDE``: shrunk to SIDE pixels on its long side
and grown back) or close (``--close SCALE``: upscaled, with sensor noise), so
``training.evaluate`` can score the whole detector on it. File names and
subfolders are kept, so ``--splits``/``--split`` pick the same held-out photos
in the copy as in the original. The sources are only read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.pipeline import shrink_to
from detector.sources import SourceError, read_image
from training.datasets import DatasetError, labelled_images
from training.splits import labelled_split, read_held


def far(image: np.ndarray, side: int) -> np.ndarray:
    """The photo shrunk so its long side is ``side`` pixels, then grown back to its size: a far, soft face."""
    small, scale = shrink_to(image, side)
    return image if scale == 1.0 else cv2.resize(small, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)


def close(image: np.ndarray, scale: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """The photo upscaled ``scale`` times with Gaussian noise of sigma ``noise`` grey levels: a near face
    on a high-resolution, noisy sensor."""
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.clip(big + rng.normal(0.0, noise, big.shape), 0, 255).astype(np.uint8)


def resample(sources: list[Path], dst: Path, change, held: dict | None, split: str | None) -> tuple[int, int]:
    """Write ``change(image)`` of every labelled photo (of ``split``, if given) under ``dst/<set>/<subfolder>/``;
    returns how many were written and how many could not be read (left out of the copy, and said)."""
    written = unreadable = 0
    for root in sources:
        for path, _ in tqdm(labelled_images(root), desc=f"resample {root.name}", unit="img"):
            if split and labelled_split(path, held) != split:
                continue
            try:
                image = read_image(path)
            except SourceError:
                unreadable += 1
                continue
            out = dst / root.name / path.parent.name / path.name
            out.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(out), change(image), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise DatasetError(f"cannot write {out}")
            written += 1
    return written, unreadable


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.resample", description=__doc__.split("\n\n")[0])
    p.add_argument("sources", type=Path, nargs="+", help="labelled folder(s)")
    p.add_argument("dst", type=Path, help="new folder for the copy (one subfolder per source)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--far", type=int, metavar="SIDE", help="shrink each photo to SIDE px (long side) and grow it back")
    how.add_argument("--close", type=float, metavar="SCALE", help="upscale each photo SCALE times, with --noise")
    p.add_argument("--noise", type=float, default=4.0, help="sensor noise sigma in grey levels for --close (default 4)")
    p.add_argument("--splits", type=Path, help="a classifier's splits.json")
    p.add_argument("--split", choices=("train", "val", "test"), help="only photos of this split")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    taken = [args.dst / s.name for s in args.sources if (args.dst / s.name).exists()]
    problem = ("--far must be 8-4096 pixels" if args.far is not None and not 8 <= args.far <= 4096
               else "--close must be above 1 and at most 8" if args.close is not None and not 1 < args.close <= 8
               else "--noise must be 0-64" if not 0 <= args.noise <= 64
               else f"{taken[0]} exists; give a new folder (nothing is overwritten)" if taken else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    change = (lambda im: far(im, args.far)) if args.far is not None else (lambda im: close(im, args.close, args.noise, rng))
    try:
        held = read_held(args.splits)
        n, unreadable = resample(args.sources, args.dst, change, held, args.split)
    except (ValueError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {n} photos under {args.dst}" + (f"; {unreadable} unreadable, left out" if unreadable else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
