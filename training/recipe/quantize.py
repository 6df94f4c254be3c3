"""``python -m training quantize DIR... --splits models/splits.json --out DIR``: the per-face nets in int8.

Why: the classifier, the visibility model and the neck model run for every
face on every classified frame. Stored as 8-bit integers they are a quarter
of the size and about twice as fast under onnxruntime on a laptop CPU
(``benchmarks/classifier.py``), which leaves room under the 1 ms per face
target on a slower machine than the one they were measured on.

Static quantization needs activation ranges, so the nets are calibrated on
their own inputs as the detector makes them: the whole pipeline runs over a
sample of **train-side** photos (``--splits``; never val or test, which judge
the result) and every batch each net is given is kept. The int8 nets are
written under ``--out`` with the shipped names, so ``training.recipe.evaluate
--classifier OUT/mask_classifier.onnx --parts OUT/parts.onnx --neck
OUT/neck.onnx`` scores them against the float nets before ``--install``.

The float nets stay the export's output (``training.recipe.export`` checks them
against Keras); this step reports how far each int8 net strays from its float
net on the calibration inputs, which is the figure to look at first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detector.classify import FLOAT_PATHS, INT8_DIR
from detector.runtime import onnx_session
from detector.sources import SourceError, read_image
from training.lib.datasets import DatasetError, labelled_images
from training.lib.splits import labelled_split, read_held, scene_split

STALE_INT8 = ("note: the detector runs the int8 copies in models/int8/, which are now stale: make them anew with "
              "python -m training quantize DATA... --splits models/splits.json --out DIR --install")
"""What ``train`` and ``neck`` print after installing a float net."""
REPORT = "quantize.json"
"""Written beside the int8 nets: calibration, how far each strays, and the float file it came from."""


def train_photos(dirs: list[Path], splits: dict[str, str] | None, limit: int, seed: int) -> list[Path]:
    """A seeded sample of ``limit`` train-side photos from labelled folders and scene sets."""
    photos = []
    for root in dirs:
        if (root / "labels.json").exists():
            files = json.loads((root / "labels.json").read_text())
            photos += [root / "images" / f for f in sorted(files) if scene_split(root.name, f, splits) == "train"]
        else:
            photos += [p for p, _ in labelled_images(root) if labelled_split(p, splits) == "train"]
    random.Random(seed).shuffle(photos)
    return photos[:limit]


def record_inputs(pipeline, photos: list[Path]) -> dict[str, list[np.ndarray]]:
    """Every batch each per-face net of ``pipeline`` is given while it analyses ``photos``."""
    kept: dict[str, list[np.ndarray]] = {name: [] for name in FLOAT_PATHS}
    for name in FLOAT_PATHS:
        model = getattr(pipeline, name)
        if model is None:
            continue

        def run(batch, _run=model.run, _kept=kept[name]):
            _kept.append(batch.copy())
            return _run(batch)

        model.run = run
    for path in tqdm(photos, desc="calibrate", unit="img"):
        try:
            pipeline.analyse(read_image(path), still=True)
        except SourceError:
            continue
    return kept


class _Batches:
    """onnxruntime's CalibrationDataReader over recorded inputs, one sample at a time
    (the nets' batch axis is free, and one sample is how the detector mostly calls them)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.samples = iter([{input_name: row[None]} for batch in batches for row in batch])

    def get_next(self) -> dict | None:
        return next(self.samples, None)


def float_ends(model_path: Path) -> list[str]:
    """The nodes kept in float: the first convolution, which reads raw pixels, and the dense head
    after the last one, which makes the probabilities. On the val-side inputs they are where int8
    strays most from the float net (the classifier's top class changed on 1.2 % of faces with them
    in int8, 0.4 % without; docs/decisions.md, the per-face nets in int8), and they cost next to nothing in float."""
    import onnx

    nodes = list(onnx.load(str(model_path)).graph.node)
    convs = [i for i, node in enumerate(nodes) if node.op_type == "Conv"]
    head = [node.name for node in nodes[convs[-1] + 1:] if node.op_type in ("MatMul", "Gemm", "Add")]
    return [nodes[convs[0]].name, *head]


def quantize(src: Path, dst: Path, batches: list[np.ndarray]) -> None:
    """``src`` as a static int8 ONNX net at ``dst``: weights per channel, activation ranges from
    ``batches`` (the 99.999th percentile, so one outlying face does not widen a whole layer's step)."""
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    CalibrationDataReader.register(_Batches)
    input_name = onnx_session(src).get_inputs()[0].name
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):  # its histogram chatter
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared))
        quantize_static(str(prepared), str(dst), _Batches(input_name, batches), quant_format=QuantFormat.QOperator,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=float_ends(prepared))


def strays(src: Path, dst: Path, batches: list[np.ndarray]) -> dict[str, float]:
    """How far ``dst``'s outputs lie from ``src``'s on ``batches``: the largest and the mean
    absolute difference, and the share of samples whose top output (class, or side of 0.5) differs."""
    float_net, int_net = onnx_session(src), onnx_session(dst)
    name = float_net.get_inputs()[0].name
    a = np.concatenate([float_net.run(None, {name: b})[0] for b in batches])
    b = np.concatenate([int_net.run(None, {name: b})[0] for b in batches])
    top = (a.argmax(1) != b.argmax(1)) if a.shape[1] > 1 else ((a[:, 0] >= 0.5) != (b[:, 0] >= 0.5))
    return {"n": int(len(a)), "max_abs": float(np.abs(a - b).max()), "mean_abs": float(np.abs(a - b).mean()),
            "top_changed": float(top.mean())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training quantize", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", type=Path, nargs="+", help="labelled folder(s) or scene set(s) to calibrate on")
    p.add_argument("--splits", type=Path, required=True, help="the classifier's splits.json: only train-side photos")
    p.add_argument("--out", type=Path, required=True, help="folder for the int8 nets and quantize.json")
    p.add_argument("--limit", type=int, default=800, help="photos to calibrate on (default 800)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--install", action="store_true", help="copy the int8 nets and their report into models/int8/")
    return p.parse_args(argv)


def run(dirs: list[Path], splits: Path, out: Path, limit: int = 800, seed: int = 0, install: bool = False) -> dict:
    """The three per-face nets in int8, calibrated on ``limit`` train-side photos of ``dirs``, into ``out``
    (and ``models/int8`` with ``install``); the report. DatasetError when there is nothing to calibrate on."""
    from detector.pipeline import Pipeline, PipelineConfig, float_nets

    if limit < 1:
        raise DatasetError(f"--limit must be at least 1, not {limit}")
    try:
        photos = train_photos(dirs, read_held(splits), limit, seed)
    except ValueError as err:
        raise DatasetError(str(err)) from None
    if not photos:
        raise DatasetError("no train-side photos to calibrate on")
    kept = record_inputs(Pipeline(PipelineConfig(**float_nets())), photos)
    missing = [name for name in FLOAT_PATHS if not kept[name]]
    if missing:
        raise DatasetError(f"the {missing[0]} net was never asked on these photos: nothing to calibrate it on")
    out.mkdir(parents=True, exist_ok=True)
    report = {"photos": len(photos), "seed": seed}
    for name, src in FLOAT_PATHS.items():
        dst = out / src.name
        quantize(src, dst, kept[name])
        row = report[name] = {"file": src.name, "source_sha256": sha256(src), "bytes": dst.stat().st_size,
                              "float_bytes": src.stat().st_size, **strays(src, dst, kept[name])}
        print(f"{name}: {row['bytes']:,} bytes (float {row['float_bytes']:,}); on {row['n']} calibration inputs "
              f"max |diff| {row['max_abs']:.4f}, top output changed on {row['top_changed']:.2%}")
    (out / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    if install:
        INT8_DIR.mkdir(exist_ok=True)
        for path in [*(out / src.name for src in FLOAT_PATHS.values()), out / REPORT]:
            if path.resolve() != (INT8_DIR / path.name).resolve():  # --out models/int8 is already installed
                shutil.copy(path, INT8_DIR / path.name)
        print(f"installed into {INT8_DIR}")
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args.dirs, args.splits, args.out, args.limit, args.seed, args.install)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def sha256(path: Path) -> str:
    """The float file an int8 net was made from, so a test can tell when it is stale."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    sys.exit(main())
