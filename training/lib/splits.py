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
import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLITS = ("train", "val", "test")
NEAR_DUPLICATE_BITS = 6
"""Perceptual hashes (64 bits) this close are treated as the same picture."""


def stable_split(group: str, val: float = 0.1, test: float = 0.15) -> str:
    """train / val / test for a group name, the same on every machine."""
    h = int(hashlib.sha1(group.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test else "val" if h < test + val else "train"


def split_of(key: str, group: str, held: dict[str, str] | None) -> str:
    """A photo's side in a classifier's ``splits.json`` (``held``), keyed by its name under the
    datasets root; a photo it does not name (no face was cropped from it) goes by ``stable_split``
    of its group, so every tool that reads the same file draws the same line."""
    return (held or {}).get(key) or stable_split(group)


def labelled_split(path: Path, held: dict[str, str] | None) -> str:
    """The side of a photo in a labelled folder (``.../<set>/<subfolder>/<file>``), named
    ``<set>/<subfolder>/<file>`` as ``splits.json`` names it and grouped ``<set>/<stem>`` (``split_of``)."""
    name = path.parent.parent.name
    return split_of(f"{name}/{path.parent.name}/{path.name}", f"{name}/{path.stem}", held)


def scene_split(set_name: str, file: str, held: dict[str, str] | None) -> str:
    """The side of a scene photo (``<set>/images/<file>``), named and grouped ``<set>/<file>`` (``split_of``)."""
    return split_of(f"{set_name}/{file}", f"{set_name}/{file}", held)


def read_held(path: Path | None) -> dict[str, str] | None:
    """A ``splits.json`` (name: split) given as ``--splits``, or None; ValueError, saying why, for anything else."""
    if path is None:
        return None
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"not a splits.json file: {path} ({error.__class__.__name__})") from None
    if not isinstance(held, dict):
        raise ValueError(f"not a splits.json file (photo name: split): {path}")
    return held


def phash(image: np.ndarray | Path | str) -> np.ndarray:
    """64-bit perceptual hash as a bool array (grayscale, so colour edits do not hide a copy)."""
    pil = Image.open(image) if isinstance(image, str | Path) else Image.fromarray(image)
    return imagehash.phash(pil.convert("L")).hash.flatten()


def _roots(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Connected components of ``n`` items joined by ``pairs``: each item's smallest member index."""
    edges = np.array(list(pairs), dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(edges), bool), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max(initial=-1) + 1, n)
    np.minimum.at(smallest, component, np.arange(n))
    return smallest[component].tolist()


def _near_pairs(hashes: list[np.ndarray], bits: int) -> Iterator[tuple[int, int]]:
    """Index pairs whose hashes differ in ``bits`` bits or fewer."""
    packed = np.packbits(np.array(hashes, dtype=bool).reshape(len(hashes), -1), axis=1)
    for i in range(len(hashes)):
        dist = np.unpackbits(packed[i + 1 :] ^ packed[i], axis=1).sum(axis=1)
        yield from ((i, i + 1 + int(j)) for j in np.nonzero(dist <= bits)[0])


def assign_splits(
    groups: Iterable[str], keys: list[str], hashes: list[np.ndarray], bits: int = NEAR_DUPLICATE_BITS
) -> dict[str, str]:
    """Split per key: keys of one group, or near-duplicates of each other, share a split (transitively).

    ``groups`` gives each key's own group (e.g. the scene photo it came from).
    A component is named by its first key in ``keys``' order, so sorted keys
    give a split that does not depend on the order the crops were read in.
    """
    first: dict[str, int] = {}
    same_group = [(first.setdefault(g, i), i) for i, g in enumerate(groups)]
    near = _near_pairs(hashes, bits) if bits >= 0 else iter(())
    roots = _roots(len(keys), itertools.chain(same_group, near))
    return {k: stable_split(keys[r]) for k, r in zip(keys, roots)}
