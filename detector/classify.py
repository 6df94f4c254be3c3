"""The mask classifier and the nose/mouth visibility model, run by onnxruntime.

All are small Keras networks trained by ``training``, exported to ONNX and
quantized to int8; onnxruntime runs them without TensorFlow, which keeps
start-up and per-face cost low.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from detector.align import model_input, neck_input, parts_input
from detector.runtime import MODELS_DIR, onnx_session
from detector.types import LABELS

INT8_DIR = MODELS_DIR / "int8"
"""The same nets in 8-bit integers (``training.recipe.quantize``): what the detector runs by default,
a quarter of the size and about twice as fast, with the same verdicts on every val face
(models/README.md, "Size and speed")."""
CLASSIFIER_FILE, PARTS_FILE, NECK_FILE = "mask_classifier.onnx", "parts.onnx", "neck.onnx"
CLASSIFIER_PATH = INT8_DIR / CLASSIFIER_FILE
PARTS_PATH = INT8_DIR / PARTS_FILE
NECK_PATH = INT8_DIR / NECK_FILE
FLOAT_PATHS = {"classifier": MODELS_DIR / CLASSIFIER_FILE, "parts": MODELS_DIR / PARTS_FILE, "neck": MODELS_DIR / NECK_FILE}
"""The float net behind each ``PipelineConfig`` model field: what ``--float`` and the reference
pipeline run, and what ``training.recipe.quantize`` turns into the int8 nets."""


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
        self.size = input_side(self.session)

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 3) probabilities for N aligned crops (one batched call)."""
        if len(crops) == 0:
            return np.zeros((0, len(LABELS)), np.float32)
        return self.run(model_input(crops, self.size))


def input_side(session: ort.InferenceSession) -> int:
    """The square side an image net takes, read from its (N, side, side, 1) input.

    Read, not assumed: a classifier trained at another side than ``MODEL_SIZE`` is fed
    crops resized to what it was trained on, never a tensor it would reject or misread."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4 or not isinstance(shape[1], int) or shape[1] != shape[2]:
        raise ValueError(f"not a square image net: input shape {shape}")
    return shape[1]


class PartsModel(_OnnxModel):
    """Nose and mouth patches in, probability that each is visible out."""

    def __init__(self, path: Path = PARTS_PATH, threads: int | None = None) -> None:
        super().__init__(path, threads)

    def predict(self, patches: list[np.ndarray]) -> np.ndarray:
        """(N, 2) [nose_visible, mouth_visible] probabilities for N faces' (2, P, P) patches."""
        if len(patches) == 0:
            return np.zeros((0, 2), np.float32)
        return self.run(parts_input(patches)).reshape(-1, 2)


NECK_MIN_INSIDE = 0.7
"""The least share of the neck patch inside the photo for the neck model to be asked.

A tight photo ends at the chin: its neck patch is mostly flat fill, and what
the model would say of it is a guess, so such a face is judged without it."""


class NeckModel(_OnnxModel):
    """The patch under the chin in, probability that a mask is there (worn, pulled down or hanging) out."""

    def __init__(self, path: Path = NECK_PATH, threads: int | None = None) -> None:
        super().__init__(path, threads)

    def predict(self, patches: list[np.ndarray], inside: list[float]) -> np.ndarray:
        """(N,) P(masked) for N neck patches; NaN where less than ``NECK_MIN_INSIDE`` lies in the photo."""
        out = np.full(len(patches), np.nan, np.float32)
        asked = [i for i, share in enumerate(inside) if share >= NECK_MIN_INSIDE]
        if asked:
            out[asked] = self.run(neck_input([patches[i] for i in asked])).reshape(-1)
        return out


PARTS_WEIGHT = 0.3
"""How much the nose/mouth evidence counts against the classifier's own view.

Chosen on the validation split (0.3 of 0.3 / 0.5 / 0.8; docs/decisions.md):
it halves bare faces passed as masked on held-out crops and leaves the label
consistent with what the face shows.
"""


CHIN_SHARE = 0.15
"""Of faces that show both nose and mouth, the share the patches attribute to a mask on the chin.

Not an even split: a face with nose and mouth out is far more often bare,
and painted chin masks made from tight bare photos taught the classifier to
read a plain band under a bare chin as ``incorrect``. Chosen on the
validation split (0.5 / 0.35 / 0.25 / 0.15; docs/decisions.md); the
classifier's own view still decides when it sees a mask on the chin.
"""


NECK_WEIGHT = 1.0
"""How far the neck model's odds move a face showing nose and mouth between ``incorrect`` and ``no_mask``.

1 of 0.5 / 1 / 2, on the val and test scene faces together: val alone holds
three faces with a mask under the chin and could not choose (docs/decisions.md, the neck model)."""

NECK_MIN_SHOWING = 0.02
"""The least P(nose shows) x P(mouth shows) for which the neck model is asked at all.

``combine`` raises the model's odds (at most 49) to the power weight x that
product, so below it the answer could move ``incorrect`` by 8 % at most: a
worn mask or a mask under the nose (most faces at a door) costs no neck patch
and no model call."""


def combine(probs: np.ndarray, visible: np.ndarray, weight: float = PARTS_WEIGHT, chin: float = CHIN_SHARE,
            neck: np.ndarray | None = None, neck_weight: float = NECK_WEIGHT,
            chin_unseen: np.ndarray | None = None) -> np.ndarray:
    """Classifier probabilities (N, 3) tempered by the visibility model (N, 2) and the neck model (N,), renormalised.

    What the patches say, as a distribution over LABELS: both covered is a
    worn mask; nose out and mouth covered is a mask worn wrong; both out is
    a bare face or, with share ``chin``, a mask on the chin. The neck model
    says whether a mask lies under the chin, below most of the crop the
    classifier sees: a mask hanging on the neck leaves a face that looks bare.
    Its odds move a face between ``incorrect`` and ``no_mask`` only, and only
    as far as nose and mouth both show: it never makes a face ``mask`` (a
    collar or a neighbour's mask under a bare face must not pass it as
    masked), and a worn mask, which covers both, is left alone. Where it was
    not asked (NaN) it counts for nothing.

    ``chin_unseen`` (N,) is the share of the chin that lies outside the photo
    (``detector.align.chin_unseen``): a face that shows nose and mouth can be
    ``incorrect`` only through a mask on the chin, which the photo cannot show
    there, so that share of ``incorrect`` goes to ``no_mask``.
    """
    nose, mouth = visible[:, 0], visible[:, 1]
    both = nose * mouth
    evidence = np.stack([(1 - nose) * (1 - mouth), nose * (1 - mouth) + chin * both, (1 - chin) * both], axis=1)
    fused = probs * np.power(np.clip(evidence, 1e-6, 1.0), weight)
    if neck is not None:
        masked = np.clip(np.nan_to_num(np.asarray(neck, np.float32), nan=0.5), 0.02, 0.98)
        fused[:, LABELS.index("incorrect")] *= np.power(masked / (1 - masked), neck_weight * both)
    fused /= fused.sum(axis=1, keepdims=True)
    if chin_unseen is not None:
        moved = fused[:, LABELS.index("incorrect")] * both * np.asarray(chin_unseen, np.float32)
        fused[:, LABELS.index("incorrect")] -= moved
        fused[:, LABELS.index("no_mask")] += moved
    return fused.astype(np.float32)
