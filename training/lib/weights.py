"""How much each class counts in training: the rare ``incorrect`` faces must not be ignored.

Shared by the classifier and the neck model; weighting by source set or by painted against
real crops was measured and left off (docs/decisions.md).
"""

from __future__ import annotations

import numpy as np

from detector.types import LABELS


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights, so the rare ``incorrect`` class is not ignored."""
    counts = np.bincount(y, minlength=len(LABELS)).astype(float)
    return {i: float(len(y) / (len(LABELS) * max(c, 1.0))) for i, c in enumerate(counts)}
