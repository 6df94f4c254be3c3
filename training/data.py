"""Crops on disk to arrays with honest splits, for ``training.train``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.align import MODEL_SIZE, PATCH_SIZE, model_input, part_patches
from detector.types import LABELS
from training.datasets import CropRecord, part_targets, read_index
from training.splits import NEAR_DUPLICATE_BITS, assign_splits, phash


@dataclass
class Arrays:
    """One split: model inputs, labels, part patches and part targets."""

    x: np.ndarray
    y: np.ndarray
    patches: np.ndarray
    parts: np.ndarray
    records: list[CropRecord]

    def __len__(self) -> int:
        return len(self.y)


PAINTED_PREFIX = "synth_"
"""Painted faces live in folders named ``synth_<set>`` (``training.full`` makes them), so
their crops' groups (``<folder>/<photo>``, ``training.crop``) start with this."""


def is_painted(record: CropRecord) -> bool:
    """Whether the crop's mask was painted by ``training.synth`` (not a real photo's)."""
    return record.group.startswith(PAINTED_PREFIX)


def photo_group(record: CropRecord) -> str:
    """A painted face belongs with the photo it was painted on."""
    return record.group[len(PAINTED_PREFIX):] if is_painted(record) else record.group


def source_set(record: CropRecord) -> str:
    """The dataset a crop came from (``scenes-ilc2021``, ``synth_chandrika``, ...)."""
    return record.source.split("/")[0]


def load_splits(
    crop_dirs: list[Path], limit: int | None = None, near_duplicate_bits: int = NEAR_DUPLICATE_BITS
) -> dict[str, Arrays]:
    """All crops of ``crop_dirs``, split train / val / test by group and near-duplicate hash."""
    records = [r for d in crop_dirs for r in read_index(Path(d))]
    if limit:
        records = records[:: max(1, len(records) // limit)][:limit]
    crops, hashes = [], []
    for r in tqdm(records, desc="load crops", unit="crop"):
        crop = cv2.imread(r.file, cv2.IMREAD_GRAYSCALE)
        crops.append(crop)
        hashes.append(phash(crop))
    split = assign_splits([photo_group(r) for r in records], [r.file for r in records], hashes, near_duplicate_bits)
    out = {}
    for name in ("train", "val", "test"):
        idx = [i for i, r in enumerate(records) if split[r.file] == name]
        sub = [records[i] for i in idx]
        out[name] = Arrays(
            x=model_input([crops[i] for i in idx]) if idx else np.zeros((0, MODEL_SIZE, MODEL_SIZE, 1), np.float32),
            y=np.array([LABELS.index(r.label) for r in sub], np.int64),
            patches=np.array([part_patches(crops[i], records[i].landmarks) for i in idx], np.uint8)
            .reshape(-1, 2, PATCH_SIZE, PATCH_SIZE),
            parts=np.array([part_targets(r) for r in sub], np.float32).reshape(-1, 2),
            records=sub,
        )
    return out
