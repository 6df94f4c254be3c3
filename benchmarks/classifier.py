"""``python benchmarks/classifier.py``: size and per-face latency of the shipped models.

The detector runs the int8 nets of ``models/int8`` (keys without a prefix); the
float nets they were made from are timed too (``float_``). The model card
quotes these figures. Faces are real aligned crops of the demo portraits (no
dataset needed); each model is timed one face at a time (the worst case: no
batching) after a warm-up, median over many runs.
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
from detector.pipeline import Pipeline, PipelineConfig, float_nets  # noqa: E402
from detector.synth.demo import astronaut_landmarks, masked_portraits  # noqa: E402


def median_ms(fn, runs: int) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def nets_timed(nets: Pipeline, prefix: str, crops: list, patches: list, necks: list, runs: int) -> dict:
    """Size and one-face latency of a pipeline's three per-face nets, and their sum per face."""
    result = {f"{prefix}{name}_bytes": getattr(nets, name).path.stat().st_size for name in ("classifier", "parts", "neck")}
    result |= {
        f"{prefix}classifier_ms_per_face": median_ms(lambda: nets.classifier.predict(crops[:1]), runs),
        f"{prefix}parts_ms_per_face": median_ms(lambda: nets.parts.predict(patches[:1]), runs),
        f"{prefix}neck_ms_per_face": median_ms(lambda: nets.neck.predict([necks[0][0]], [necks[0][1]]), runs),
        f"{prefix}classifier_ms_per_face_batch4": median_ms(lambda: nets.classifier.predict(crops), runs) / len(crops),
    }
    result[f"{prefix}all_three_ms_per_face"] = sum(result[f"{prefix}{n}_ms_per_face"] for n in ("classifier", "parts", "neck"))
    return result


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
    # one intra-op thread each, as the detector runs them; int8 (the default), then the float nets
    result = nets_timed(pipeline, "", crops, patches, necks, args.runs)
    result |= nets_timed(Pipeline(PipelineConfig(**float_nets())), "float_", crops, patches, necks, args.runs)
    result["neck_patch_ms_per_face"] = median_ms(lambda: neck_patch(gray, matrix), args.runs)
    result["align_ms_per_face"] = median_ms(lambda: align_face(gray, landmarks), args.runs)
    for key, value in result.items():
        print(f"{key:32s} {value:,.3f}" if isinstance(value, float) else f"{key:32s} {value:,}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
