"""The mask classifier and the nose/mouth visibility model, run by onnxruntime.

Both are small Keras networks trained by ``training`` and exported to ONNX;
onnxruntime runs them without TensorFlow, which keeps start-up and per-face
cost low.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from detector.align import model_input, parts_input
from detector.types import LABELS

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CLASSIFIER_PATH = MODELS_DIR / "mask_classifier.onnx"
PARTS_PATH = MODELS_DIR / "parts.onnx"


def onnx_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session; a clear error when the model file is missing.

    One intra-op thread and no spinning by default: a batch of a few 64x64
    faces is too small to split, and idle workers spinning between the many
    small calls of a frame steal the core the next stage needs. On 2 cores
    one thread was ~2x faster per call than two (benchmarks/README.md).
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"model not found: {path} (train one with python -m training.train)")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class _OnnxModel:
    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = onnx_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]


class MaskClassifier(_OnnxModel):
    """Aligned grayscale crops in, probabilities over ``LABELS`` out."""

    labels = LABELS

    def __init__(self, path: Path = CLASSIFIER_PATH, threads: int | None = None) -> None:
        super().__init__(path, threads)

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 3) probabilities for N aligned crops (one batched call)."""
        if len(crops) == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        return self.run(model_input(crops))


class PartsModel(_OnnxModel):
    """Nose and mouth patches in, probability that each is visible out."""

    def __init__(self, path: Path = PARTS_PATH, threads: int | None = None) -> None:
        super().__init__(path, threads)

    def predict(self, patches: list[np.ndarray]) -> np.ndarray:
        """(N, 2) [nose_visible, mouth_visible] probabilities for N faces' (2, P, P) patches."""
        if len(patches) == 0:
            return np.zeros((0, 2), np.float32)
        return self.run(parts_input(patches)).reshape(-1, 2)
