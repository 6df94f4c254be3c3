"""``python -m training export``: Keras models to ONNX, checked against Keras.

``tf2onnx.convert.from_keras`` breaks on Keras 3 (KeyError on keras_tensor),
so the model is wrapped in a ``tf.function`` with an input signature and
converted with ``tf2onnx.convert.from_function``. The ONNX file is only kept
if onnxruntime reproduces Keras within ``TOLERANCE`` on real inputs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from training.recipe.export_mtcnn import TOLERANCE


def to_onnx(model, path: Path, opset: int = 17) -> Path:
    """Convert a Keras model with one input to an ONNX file with a dynamic batch."""
    import tensorflow as tf
    import tf2onnx

    shape = (None, *model.input_shape[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name="input"),)

    @tf.function(input_signature=signature)
    def forward(x):
        return {"output": model(x, training=False)}

    path.parent.mkdir(parents=True, exist_ok=True)
    tf2onnx.convert.from_function(forward, input_signature=signature, opset=opset, output_path=str(path))
    return path


def parity(model, path: Path, batch: np.ndarray) -> float:
    """Largest absolute difference between Keras and onnxruntime on ``batch``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})[0]
    want = np.asarray(model(batch, training=False))
    return float(np.abs(got - want).max())


def export_checked(model, path: Path, batch: np.ndarray) -> float:
    """Export, then verify parity; raises if ONNX and Keras disagree."""
    to_onnx(model, path)
    diff = parity(model, path, batch)
    if diff > TOLERANCE:
        raise RuntimeError(f"ONNX differs from Keras by {diff:.2e} (> {TOLERANCE}) for {path}")
    return diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training export", description=__doc__.split("\n\n")[0])
    p.add_argument("keras_file", type=Path, nargs="+", help=".keras model(s) saved by training.recipe.train")
    p.add_argument("--out", type=Path, default=Path("models"), help="folder for the .onnx files (default: models)")
    args = p.parse_args(argv)
    import keras

    for file in args.keras_file:
        if not file.exists():
            print(f"error: no such model: {file}", file=sys.stderr)
            return 2
        model = keras.models.load_model(file)
        batch = np.random.default_rng(0).random((8, *model.input_shape[1:]), dtype=np.float32)
        diff = export_checked(model, args.out / f"{file.stem}.onnx", batch)
        print(f"{file.stem}.onnx written; max |ONNX - Keras| = {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
