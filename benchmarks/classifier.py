"""``python benchmarks/classifier.py``: size and per-face latency of the shipped models.

The model card quotes these figures. Faces are real aligned crops of the
demo portraits (no dataset needed); each model is timed one face at a time
(the worst case: no batching) after a warm-up, median over many runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere, installed or not
    sys.path.insert(0, str(ROOT))

from detector.align import align_face, alignment_matrix, neck_patch, part_patches  # noqa: E402
from detector.classify import CLASSIFIER_PATH, NECK_PATH, PARTS_PATH  # noqa: E402
from detector.demo import astronaut_landmarks, masked_portraits  # noqa: E402
from detector.pipeline import Pipeline  # noqa: E402


def median_ms(fn, runs: int) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=500)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    pipeline = Pipeline()
    landmarks = astronaut_landmarks(pipeline)
    matrix = alignment_matrix(landmarks)  # one face in every portrait: one fit, shared by the crop and the neck patch
    crops, patches, necks = [], [], []
    for image in masked_portraits(landmarks).values():
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        crop, crop_lm = align_face(gray, landmarks, matrix=matrix)
        crops.append(crop)
        patches.append(part_patches(crop, crop_lm))
        necks.append(neck_patch(gray, matrix))
    # one intra-op thread each, as the detector runs them
    classifier, parts, neck = pipeline.classifier, pipeline.parts, pipeline.neck
    result = {
        "classifier_bytes": CLASSIFIER_PATH.stat().st_size,
        "parts_bytes": PARTS_PATH.stat().st_size,
        "classifier_ms_per_face": median_ms(lambda: classifier.predict(crops[:1]), args.runs),
        "parts_ms_per_face": median_ms(lambda: parts.predict(patches[:1]), args.runs),
        "neck_bytes": NECK_PATH.stat().st_size,
        "neck_ms_per_face": median_ms(lambda: neck.predict([necks[0][0]], [necks[0][1]]), args.runs),
        "neck_patch_ms_per_face": median_ms(lambda: neck_patch(gray, matrix), args.runs),
        "classifier_ms_per_face_batch4": median_ms(lambda: classifier.predict(crops), args.runs) / len(crops),
        "align_ms_per_face": median_ms(lambda: align_face(gray, landmarks), args.runs),
    }
    for key, value in result.items():
        print(f"{key:32s} {value:,.3f}" if isinstance(value, float) else f"{key:32s} {value:,}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
