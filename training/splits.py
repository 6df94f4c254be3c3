"""Honest train / val / test splits.

The public sets repeat people and near-identical pictures (augmented copies,
the same face in two datasets). A random split by file would put a person in
both train and test and flatter every figure. Instead, pictures are grouped
(same source photo, or a perceptual hash within a few bits of another's) and
whole groups go to one side, chosen by a stable hash of the group's name so a
split never changes between runs or machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image

SPLITS = ("train", "val", "test")
NEAR_DUPLICATE_BITS = 6
"""Perceptual hashes (64 bits) this close are treated as the same picture."""


def stable_split(group: str, val: float = 0.1, test: float = 0.15) -> str:
    """train / val / test for a group name, the same on every machine."""
    h = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


def phash(image: np.ndarray | Path | str) -> np.ndarray:
    """64-bit perceptual hash as a bool array (grayscale, so colour edits do not hide a copy)."""
    pil = Image.open(image) if isinstance(image, str | Path) else Image.fromarray(image)
    return imagehash.phash(pil.convert("L")).hash.flatten()


def near_duplicate_groups(keys: list[str], hashes: list[np.ndarray], bits: int = NEAR_DUPLICATE_BITS) -> dict[str, str]:
    """Map each key to a group name shared by all its near-duplicates (transitively)."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    packed = np.packbits(np.array(hashes, dtype=bool).reshape(len(keys), -1), axis=1)
    for i in range(len(keys)):
        dist = np.unpackbits(packed[i + 1 :] ^ packed[i], axis=1).sum(axis=1)
        for j in np.nonzero(dist <= bits)[0]:
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {k: keys[find(i)] for i, k in enumerate(keys)}


def assign_splits(
    groups: Iterable[str], keys: list[str], hashes: list[np.ndarray], bits: int = NEAR_DUPLICATE_BITS
) -> dict[str, str]:
    """Split per key: near-duplicates are merged, then whole groups go to one side.

    ``groups`` gives each key's own group (e.g. the scene photo it came from);
    keys in one group, or near-duplicates of each other, share a split.
    """
    groups = list(groups)
    dup = near_duplicate_groups(keys, hashes, bits) if bits >= 0 else {k: k for k in keys}
    # union the explicit groups with the near-duplicate ones
    first_of_group: dict[str, str] = {}
    for key, group in zip(keys, groups):
        first_of_group.setdefault(group, dup[key])
    root = {key: min(dup[key], first_of_group[group]) for key, group in zip(keys, groups)}
    return {key: stable_split(root[key]) for key in keys}
