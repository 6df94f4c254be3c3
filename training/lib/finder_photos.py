"""The photos a face finder is refit and judged on: one split's still photos and scene photos with boxes,
and images with no face at all.

The refit (``training.recipe.finetune_mtcnn``) reads the train side and the recall tool
(``training.tools.recall``) a held-out one, through the same function, so the two can never
disagree on which photo is on which side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.sources import read_image
from detector.track import iou_matrix
from training.lib.splits import assign_splits, labelled_split, phash, scene_split

STILL_FOLDERS = {
    "chandrika/with_mask": "mask", "prajnasb/with_mask": "mask", "maskedface-net/CWM": "mask",
    "maskedface-net/IWM": "incorrect", "chandrika/without_mask": "no_mask", "prajnasb/without_mask": "no_mask",
}
SCENES = "scenes-ilc2021"
CROWDS = "crowds-adityap27"
"""Crowd photos with boxes (mask / no_mask only): small, blurred faces, for finding faces, not for ``incorrect``."""
NONFACE_SAMPLES = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "hubble_deep_field",
                   "immunohistochemistry", "coins", "moon", "page", "text", "clock", "colorwheel", "retina",
                   "checkerboard", "cell", "microaneurysms")
"""scikit-image samples without a face (camera and astronaut have one)."""
CACHE = Path.home() / ".cache" / "mask-detector" / "phash.json"


@dataclass
class EvalSet:
    """Photos of one split: (folder, label, path) stills, scene photos with boxes."""

    stills: list[tuple[str, str, Path]] = field(default_factory=list)
    scenes: list[tuple[Path, list[dict]]] = field(default_factory=list)


def _hashes(paths: list[Path]) -> list[np.ndarray]:
    """Perceptual hashes, cached by path and mtime (hashing 6,000 photos takes a while)."""
    cache = json.loads(CACHE.read_text()) if CACHE.is_file() else {}
    out = []
    for path in tqdm(paths, desc="phash", unit="img", leave=False):
        key = f"{path.resolve()}:{path.stat().st_mtime_ns}"
        if key not in cache:
            cache[key] = "".join("1" if b else "0" for b in phash(path))
        out.append(np.array([c == "1" for c in cache[key]]))
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(json.dumps(cache))
    return out


def photo_splits(paths: list[Path], root: Path) -> dict[Path, str]:
    """The project's honest split, one group per photo, near-duplicates merged.

    Photos are named relative to the datasets root ("chandrika/with_mask/0129.jpg"),
    so the split is the same wherever the data lives (a CI clone, another machine).
    """
    keys = [p.relative_to(root).as_posix() for p in paths]
    split = assign_splits(groups=keys, keys=keys, hashes=_hashes(paths))
    return {p: split[k] for p, k in zip(paths, keys)}


def face_free_square(rng: np.random.Generator, shape: tuple[int, ...], faces: np.ndarray) -> tuple[int, int, int] | None:
    """A random 100-300 px square (x, y, side) of an image that overlaps no face box, or None."""
    h, w = shape[:2]
    side = int(rng.integers(100, 301))
    if side >= min(h, w):
        return None
    x, y = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
    if iou_matrix(np.array([[x, y, x + side, y + side]], dtype=np.float64), faces).any():
        return None
    return x, y, side


def face_free_crops(scenes: list[tuple[Path, list[dict]]], seed: int = 0, tries: int = 20) -> list[np.ndarray]:
    """One random 100-300 px crop per scene photo that overlaps no labelled face box."""
    rng, out = np.random.default_rng(seed), []
    for path, labels in scenes:
        rgb = read_rgb(path)
        boxes = np.array([b["box"] for b in labels], dtype=np.float64).reshape(-1, 4)
        for _ in range(tries):
            found = face_free_square(rng, rgb.shape, boxes)
            if found:
                x, y, side = found
                out.append(rgb[y : y + side, x : x + side].copy())
                break
    return out


def load_eval_set(
    data: Path, split: str = "test", limit: int | None = None, seed: int = 0, held: dict[str, str] | None = None,
    scene_sets: tuple[str, ...] = (SCENES,),
) -> EvalSet:
    """Everything of one split; ``limit`` keeps a seeded sample of N per folder (and N scenes of each set).

    ``held`` (a classifier's ``splits.json``) draws the line where the classifier did, so a
    finder refit on its train side leaves the photos that judge the whole detector unseen;
    without it, the finder's own split (``photo_splits``).
    """
    stills = [(folder, label, path) for folder, label in STILL_FOLDERS.items()
              for path in sorted((data / folder).glob("*.jpg"))]
    scenes = {name: _scenes(data, name) for name in scene_sets}
    every_scene = [path for found in scenes.values() for path, _ in found]
    if held is None:
        splits = photo_splits([p for _, _, p in stills] + every_scene, data)
    else:  # named as training.evaluate names them
        splits = {path: labelled_split(path, held) for _, _, path in stills}
        splits |= {path: scene_split(path.parent.parent.name, path.name, held) for path in every_scene}
    rng = np.random.default_rng(seed)
    out = EvalSet()
    for folder in STILL_FOLDERS:
        chosen = [s for s in stills if s[0] == folder and splits[s[2]] == split]
        out.stills += _sample(chosen, limit, rng)
    for found in scenes.values():
        out.scenes += _sample([s for s in found if splits[s[0]] == split], limit, rng)
    return out


def _scenes(data: Path, name: str) -> list[tuple[Path, list[dict]]]:
    """A scene set's photos with their labelled boxes, in name order."""
    labels = json.loads((data / name / "labels.json").read_text())
    return [(data / name / "images" / file, boxes) for file, boxes in sorted(labels.items())]


def _sample(items: list, limit: int | None, rng: np.random.Generator) -> list:
    """A seeded sample of at most ``limit`` items, in their original order."""
    if limit is None or len(items) <= limit:
        return items
    return [items[i] for i in sorted(rng.choice(len(items), limit, replace=False))]


def nonface_images(data: EvalSet, seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Non-face images by set: scikit-image samples (RGB) and face-free crops of the scene photos
    (cut here, not in ``load_eval_set``: the refit reads the train split and needs none)."""
    images = [nonface_sample(name) for name in NONFACE_SAMPLES]
    return {"skimage": images, "scene_crops": face_free_crops(data.scenes, seed)}


def nonface_sample(name: str) -> np.ndarray:
    """One of scikit-image's samples as RGB uint8 (grey, boolean and RGBA ones converted)."""
    from skimage import data as samples

    image = np.asarray(getattr(samples, name)())
    image = image.astype(np.uint8) * (255 if image.dtype == bool else 1)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3].copy()


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 from an image file (``detector.sources.read_image`` says why one is unreadable)."""
    return cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
