"""``python benchmarks/photos.py``: time per photo on the still-photo path, with each extra search on or off.

Why: a photo is searched harder than a video frame. Border retries, a finer search for small faces
(``FinderConfig.still_small_faces``), an enlarged copy of a small photo (``still_upscale``) and the
framed last resort each find faces the plain search misses, and each costs time. This measures that
cost through ``Pipeline.analyse(still=True)`` (finder, landmarks and classifier), one photo at a time.

``--source DIR`` times the photos of a folder (``--limit`` the first N, sorted by name); without it,
scikit-image's astronaut at 256, 512, 1024 and 1920 px and its coins photo (no dataset needed).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, installed or not
    sys.path.insert(0, str(ROOT))

from detector.finders import FinderConfig  # noqa: E402
from detector.pipeline import Pipeline, PipelineConfig  # noqa: E402
from detector.sources import SourceError, open_source  # noqa: E402
from detector.synth.demo import astronaut_bgr  # noqa: E402

VARIANTS = {
    "shipped": {},
    "no enlarged copy": {"still_upscale": None},
    "no finer search": {"still_small_faces": None},
    "neither": {"still_upscale": None, "still_small_faces": None},
}
"""Still-path settings compared, as changes to the shipped ``FinderConfig``."""


def sample_photos() -> dict[str, np.ndarray]:
    """Photos that ship with scikit-image: one face at four sizes, and a face-free photo."""
    from skimage import data

    face = astronaut_bgr()
    photos = {f"astronaut {side} px": cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if side < 512
                                                  else cv2.INTER_CUBIC) for side in (256, 512, 1024, 1920)}
    photos["coins"] = cv2.cvtColor(data.coins(), cv2.COLOR_GRAY2BGR)
    return photos


def folder_photos(folder: Path, limit: int | None) -> dict[str, np.ndarray]:
    """The first ``limit`` readable photos of a folder, by file name: the detector's own folder source
    (the same listing and order, unreadable files skipped); a SourceError where it holds no image."""
    return {Path(frame.source).name: frame.image for frame in itertools.islice(open_source(str(folder)), limit)}


def time_variant(changes: dict, photos: dict[str, np.ndarray], name: str) -> dict:
    """Milliseconds per photo (after one warm-up photo) and faces found, for one variant."""
    pipeline = Pipeline(PipelineConfig(faces=replace(FinderConfig(), **changes)))
    pipeline.analyse(next(iter(photos.values())), still=True)
    times, faces = [], 0
    for image in tqdm(photos.values(), desc=name, unit="photo", leave=False):
        start = time.perf_counter()
        faces += len(pipeline.analyse(image, still=True))
        times.append((time.perf_counter() - start) * 1000)
    return {"mean_ms": round(statistics.mean(times), 1), "median_ms": round(statistics.median(times), 1),
            "max_ms": round(max(times), 1), "faces": faces, "photos": len(times)}


def main() -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/photos.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--source", type=Path, help="a folder of photos (default: scikit-image samples)")
    p.add_argument("--limit", type=int, help="time only the first N photos of --source")
    p.add_argument("--json", type=Path, help="also write the result here as JSON")
    args = p.parse_args()
    if args.source is not None and not args.source.is_dir():
        print(f"error: --source: not a folder: {args.source}", file=sys.stderr)
        return 2
    try:
        photos = folder_photos(args.source, args.limit) if args.source else sample_photos()
    except SourceError as error:
        print(f"error: --source: {error}", file=sys.stderr)
        return 2
    if not photos:
        print(f"error: --source: no readable photo in {args.source}", file=sys.stderr)
        return 2
    result = {name: time_variant(changes, photos, name) for name, changes in VARIANTS.items()}
    print(f"{len(photos)} photos from {args.source or 'scikit-image samples'}")
    print(f"{'variant':<18} {'mean ms':>8} {'median':>8} {'max':>8} {'faces':>6}")
    for name, r in result.items():
        print(f"{name:<18} {r['mean_ms']:>8} {r['median_ms']:>8} {r['max_ms']:>8} {r['faces']:>6}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
