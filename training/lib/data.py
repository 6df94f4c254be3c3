"""Crops on disk to arrays with honest splits, for ``training.recipe.train``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.align import MODEL_SIZE, PATCH_SIZE, model_input, part_patches
from detector.types import LABELS
from training.lib.datasets import CropRecord, part_targets, read_index
from training.lib.splits import NEAR_DUPLICATE_BITS, assign_splits, phash, stable_split


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
"""Painted faces live in folders named ``synth_<set>`` (``training.recipe.full`` makes them), so
their crops' groups (``<folder>/<photo>``, ``training.recipe.crop``) start with this."""


def is_painted(record: CropRecord) -> bool:
    """Whether the crop's mask was painted by ``training.recipe.synth`` (not a real photo's)."""
    return record.group.startswith(PAINTED_PREFIX)


def photo_group(record: CropRecord) -> str:
    """A painted face belongs with the photo it was painted on."""
    return record.group[len(PAINTED_PREFIX):] if is_painted(record) else record.group


def source_set(record: CropRecord) -> str:
    """The dataset a crop came from (``scenes-ilc2021``, ``synth_chandrika``, ...)."""
    return record.source.split("/")[0]


def split_records(records: list[CropRecord], hashes: list[np.ndarray | None],
                  near_duplicate_bits: int = NEAR_DUPLICATE_BITS, held: dict[str, str] | None = None) -> list[str]:
    """train / val / test per record, decided by the real photos alone, the same wherever the crops live.

    Real crops are grouped by photo and near-duplicate hash (``assign_splits``),
    each group named by the first of its photos' names in the datasets
    (``chandrika/with_mask/0129.jpg``). A painted face goes wherever the photo
    it was painted on went (a photo no real crop came from falls back to
    ``stable_split`` of its name). Two things this rules out, both seen: the
    groups were named by the crop files' paths, so cropping into another
    folder reshuffled the whole split; and painted crops' hashes joined the
    grouping, so remaking the painted set moved real photos between splits.
    ``hashes`` may be None for painted records. ``held`` (a ``splits.json``: photo name -> side)
    keeps every photo it names where it was, so a retrain on new crops is judged on the same
    photos, and the face finder refit on that file's train side stays off val and test.
    """
    real = sorted((i for i, r in enumerate(records) if not is_painted(r)), key=lambda i: records[i].source)
    keys = [records[i].source for i in real]
    photos = [key.split("#")[0] for key in keys]
    split = assign_splits([records[i].group for i in real], photos, [hashes[i] for i in real], near_duplicate_bits)
    split = {key: (held or {}).get(photo, split[photo]) for key, photo in zip(keys, photos)}
    by_photo = {records[i].group: split[records[i].source] for i in real}
    return [split[r.source] if not is_painted(r) else by_photo.get(photo_group(r)) or stable_split(photo_group(r))
            for r in records]


def load_splits(
    crop_dirs: list[Path], limit: int | None = None, near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
    held: dict[str, str] | None = None, size: int = MODEL_SIZE,
) -> dict[str, Arrays]:
    """All crops of ``crop_dirs``, split train / val / test by photo and near-duplicate hash
    (photos ``held`` names keep their side), as classifier inputs of side ``size``."""
    records = [r for d in crop_dirs for r in read_index(Path(d))]
    if limit:
        records = records[:: max(1, len(records) // limit)][:limit]
    crops = [cv2.imread(r.file, cv2.IMREAD_GRAYSCALE) for r in tqdm(records, desc="load crops", unit="crop")]
    hashes = [None if is_painted(r) else phash(crop) for r, crop in zip(records, crops)]
    split = split_records(records, hashes, near_duplicate_bits, held)
    out = {}
    for name in ("train", "val", "test"):
        idx = [i for i, s in enumerate(split) if s == name]
        sub = [records[i] for i in idx]
        out[name] = Arrays(
            x=model_input([crops[i] for i in idx], size) if idx else np.zeros((0, size, size, 1), np.float32),
            y=np.array([LABELS.index(r.label) for r in sub], np.int64),
            patches=np.array([part_patches(crops[i], records[i].landmarks) for i in idx], np.uint8)
            .reshape(-1, 2, PATCH_SIZE, PATCH_SIZE),
            parts=np.array([part_targets(r) for r in sub], np.float32).reshape(-1, 2),
            records=sub,
        )
    return out
