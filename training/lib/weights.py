"""Which training crops count how much: class balance, painted vs real, per source set.

Kept apart from ``training.recipe.train`` because each rule is a small, separately
tested answer to one question: how much should a rare real crop weigh next to
plentiful painted ones?
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from detector.types import LABELS
from training.lib.data import Arrays, is_painted, source_set
from training.lib.datasets import DatasetError


def class_weights(y: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights, so the rare ``incorrect`` class is not ignored."""
    counts = np.bincount(y, minlength=len(LABELS)).astype(float)
    return {i: float(len(y) / (len(LABELS) * max(c, 1.0))) for i, c in enumerate(counts)}


def cell_weights(data: Arrays, power: float = 0.5) -> np.ndarray:
    """Per-crop weights that balance (label, painted or real) cells, mean 1.

    Class weights alone see ``incorrect`` as the commonest label, because
    most of it is painted; the few real incorrectly worn masks then count
    least of all, and real scenes are where the label is hard. Weighting
    each cell by (share it would have if cells were equal / its share) **
    ``power`` lifts the rare real cells without letting a few hundred crops
    dominate (power 1 balances fully, 0 is no weighting).
    """
    cells = [(int(y), is_painted(r)) for y, r in zip(data.y, data.records)]
    counts = Counter(cells)
    w = np.array([(len(cells) / (len(counts) * counts[c])) ** power for c in cells], np.float32)
    return w / w.mean()


def set_weights(data: Arrays, multipliers: dict[str, float], base: np.ndarray | None = None) -> np.ndarray:
    """Per-crop weights: ``base`` (default class-balanced) times a multiplier per source set, mean 1.

    Real photos of masks worn wrong are a few hundred crops among thousands
    of painted ones; with class weights alone the model learns the painted
    look of ``incorrect``. ``{"scenes-ilc2021": 3}`` makes each real scene crop
    count three times as much, of every label, so bare real faces are lifted too.
    A key ``set:label`` (``{"scenes-ilc2021:incorrect": 2}``) lifts one label of a set only,
    and wins over the set's own key.
    """
    sets = [source_set(r) for r in data.records]
    cells = [f"{s}:{LABELS[int(y)]}" for s, y in zip(sets, data.y)]
    unknown = sorted(set(multipliers) - set(sets) - set(cells))
    if unknown:
        raise DatasetError(f"set_weights names sets with no training crops: {', '.join(unknown)}")
    if base is None:
        per_class = class_weights(data.y)
        base = np.array([per_class[int(y)] for y in data.y], np.float32)
    w = base * np.array([multipliers.get(c, multipliers.get(s, 1.0)) for s, c in zip(sets, cells)], np.float32)
    return w / w.mean()


def real_only(data: Arrays) -> Arrays:
    """The crops of real photos (no painted mask)."""
    idx = [i for i, r in enumerate(data.records) if not is_painted(r)]
    return Arrays(data.x[idx], data.y[idx], data.patches[idx], data.parts[idx], [data.records[i] for i in idx])
