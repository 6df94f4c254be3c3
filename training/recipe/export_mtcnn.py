"""Export the ``mtcnn`` package's PNet, RNet and ONet to ONNX.

The runtime detector (``detector/mtcnn_onnx.py``) runs these nets on
onnxruntime so it never has to import TensorFlow. The nets are built exactly
as ``mtcnn/stages/stage_*.py`` build them (same classes, same shipped
weights), so the ONNX files are the package's models, not a re-training.

``tf2onnx.convert.from_keras`` breaks on Keras 3, hence ``from_function`` over
a ``tf.function`` with an explicit input signature.

Usage: ``python -m training export_mtcnn [--out models/mtcnn]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

TOLERANCE = 1e-4
"""Largest accepted |ONNX - Keras| on any output; above it the export fails."""

OPSET = 17

# name -> (weights file, input shape, output names in the Keras model's order)
NETS: dict[str, tuple[str, list[int | None], tuple[str, ...]]] = {
    "pnet": ("pnet.lz4", [None, None, None, 3], ("bbox_reg", "prob")),
    "rnet": ("rnet.lz4", [None, 24, 24, 3], ("bbox_reg", "prob")),
    "onet": ("onet.lz4", [None, 48, 48, 3], ("bbox_reg", "landmarks", "prob")),
}

# Spatial sizes used to check PNet, odd ones included ("same" max-pooling).
PNET_CHECK_SIZES = ((12, 12), (37, 51), (120, 97), (240, 320))


def build_keras_net(name: str):
    """Build one of the package's nets with its shipped weights, as its stage does."""
    from mtcnn.network.onet import ONet
    from mtcnn.network.pnet import PNet
    from mtcnn.network.rnet import RNet
    from mtcnn.utils.tensorflow import load_weights

    model = {"pnet": PNet, "rnet": RNet, "onet": ONet}[name]()
    model.build()
    model.set_weights(load_weights(NETS[name][0]))
    return model


def _rename_io(model_proto, output_names: tuple[str, ...]) -> None:
    """Give inputs/outputs stable names so the runtime can fetch them by name."""
    renames = {model_proto.graph.input[0].name: "input"}
    renames.update({o.name: new for o, new in zip(model_proto.graph.output, output_names)})
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in model_proto.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def export_net(name: str, out_dir: Path):
    """Convert one net to ``out_dir/<name>.onnx``; returns the Keras model."""
    model = build_keras_net(name)
    save_onnx(model, name, out_dir / f"{name}.onnx")
    return model


def save_onnx(model, name: str, path: Path) -> None:
    """tf2onnx over a tf.function (from_keras breaks on Keras 3), inputs and outputs named as the package's nets."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    _, shape, output_names = NETS[name]
    spec = (tf.TensorSpec(shape, tf.float32, name="input"),)
    func = tf.function(lambda x: model(x), input_signature=spec)
    model_proto, _ = tf2onnx.convert.from_function(func, input_signature=spec, opset=OPSET)
    _rename_io(model_proto, output_names)
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, str(path))


def max_difference(name: str, model, onnx_path: Path, seed: int = 0) -> float:
    """Largest |ONNX - Keras| over all outputs on random normalized inputs."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    sizes = PNET_CHECK_SIZES if name == "pnet" else [tuple(NETS[name][1][1:3])]
    worst = 0.0
    for height, width in sizes:
        batch = rng.uniform(-1.0, 1.0, (5, height, width, 3)).astype(np.float32)
        expected = [np.asarray(t) for t in model(batch)]
        got = session.run(list(NETS[name][2]), {"input": batch})
        for exp, out in zip(expected, got):
            if exp.shape != out.shape:
                raise RuntimeError(f"{name}: shape {out.shape} != Keras {exp.shape}")
            worst = max(worst, float(np.abs(exp - out).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    """Export all three nets, verify them and report the worst difference."""
    parser = argparse.ArgumentParser(
        prog="python -m training export_mtcnn",
        description="Export the mtcnn package's PNet/RNet/ONet to ONNX and verify them.",
    )
    parser.add_argument("--out", type=Path, default=Path("models/mtcnn"),
                        help="output folder for pnet.onnx, rnet.onnx, onet.onnx (default: %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in NETS:
        model = export_net(name, args.out)
        diff = max_difference(name, model, args.out / f"{name}.onnx")
        ok = diff <= TOLERANCE
        failed |= not ok
        verdict = "OK" if ok else f"FAIL (> {TOLERANCE:g})"
        print(f"{name}: {args.out / (name + '.onnx')}  max |onnx - keras| = {diff:.3e}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
