"""Training patches for MTCNN's nets: face and background squares cut from the train photos.

Why a module of its own: what the refit learns is decided here (which faces
count, which squares are the hard negatives, how a far camera is imitated),
apart from how ``training.recipe.finetune_mtcnn`` trains on it. Patches are cut with
the detector's own ``crop_resize``, so they are what the nets see at run time.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.finders import FinderConfig, detect_still, make_finder
from detector.finders.cascade import crop_resize, square
from detector.finders.mtcnn import OnnxMTCNN
from detector.pipeline import shrink_to
from detector.track import iou_matrix
from training.lib.finder_photos import face_free_square, read_rgb

SIZES = {"pnet": 12, "rnet": 24, "onet": 48}
"""Input side of each net: every patch is cut at all three."""
LENIENT = FinderConfig(thresholds=(0.4, 0.4, 0.5), min_score=0.5,
                       still_borders=((0.25, "replicate"), (0.5, "replicate"), (1.0, "replicate")))
"""Finds the face box in still photos the stock defaults miss (stills hold one face)."""
TIGHT_FOLDERS = ("chandrika/with_mask", "chandrika/without_mask")
"""Folders of tight face crops (eyebrows to chin): a photo there holds its face centred."""
TIGHT_SIDE = 0.8
"""Face square / long side of a tight crop: the median where the lenient cascade finds it."""
SOFT_SIDES = (16.0, 48.0)
"""Detail left in a softened face (``--soft``), in pixels across: from a little over PNet's
12 px input to ONet's 48, where a face grown to the net's input is visibly soft."""


def jitter(box: np.ndarray, rng: np.random.Generator, count: int, min_iou: float = 0.65) -> np.ndarray:
    """Up to ``count`` squares near ``box`` overlapping it at least ``min_iou`` (the box itself first)."""
    side = box[2] - box[0]
    shift = rng.uniform(-0.15, 0.15, (count * 4, 2)) * side
    scale = rng.uniform(0.85, 1.15, count * 4) * side
    cx, cy = (box[0] + box[2]) / 2 + shift[:, 0], (box[1] + box[3]) / 2 + shift[:, 1]
    cand = np.stack([cx - scale / 2, cy - scale / 2, cx + scale / 2, cy + scale / 2], axis=1)
    good = cand[iou_matrix(cand, box[None])[:, 0] >= min_iou]
    return np.concatenate([box[None], good[: count - 1]])


def random_negatives(shape: tuple[int, ...], faces: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Random squares (12 px to half the short side) overlapping no face at IoU >= 0.3."""
    h, w = shape[:2]
    side = rng.uniform(12, max(13, min(h, w) / 2), count * 3)
    x, y = rng.uniform(0, 1, count * 3) * (w - side), rng.uniform(0, 1, count * 3) * (h - side)
    cand = np.stack([x, y, x + side, y + side], axis=1)
    keep = iou_matrix(cand, faces).max(axis=1, initial=0.0) < 0.3 if len(faces) else np.ones(len(cand), bool)
    return cand[keep][:count]


def proposals(mtcnn: OnnxMTCNN, image: np.ndarray) -> np.ndarray:
    """PNet then RNet proposals at the lenient thresholds: the hard negatives of a scene."""
    boxes = mtcnn._stage_pnet(image, LENIENT.thresholds[0])
    if len(boxes):
        boxes = np.concatenate([boxes, mtcnn._stage_rnet(image, boxes, LENIENT.thresholds[1])])
    return square(boxes)[:, :4] if len(boxes) else np.empty((0, 4))


def scene_patches(data, mtcnn: OnnxMTCNN, rng: np.random.Generator, jitters: int, negatives: int, soft: float = 0.0):
    """(image, boxes, labels) per train scene photo: jittered labelled faces and negatives; with
    probability ``soft`` the same for a softened copy (``soften``), whose negatives are soft too."""
    for path, labels in tqdm(data.scenes, desc="scene patches", unit="img"):
        rgb = read_rgb(path)
        faces = square(np.array([b["box"] for b in labels], dtype=np.float64).reshape(-1, 4))
        copies = [(rgb, faces)]
        if soft and len(faces) and rng.random() < soft:  # no draw at 0: the shipped recipe's stream
            copies.append(soften(rgb, faces, rng))
        for image, kept in copies:
            image = OnnxMTCNN._normalize(image)
            pos = [jitter(f, rng, jitters) for f in kept if f[2] - f[0] >= 12]
            hard = proposals(mtcnn, image)
            if len(hard) and len(faces):
                hard = hard[iou_matrix(hard, faces).max(axis=1) < 0.3]
            hard = hard[rng.permutation(len(hard))[:negatives]]
            neg = np.concatenate([hard, random_negatives(rgb.shape, faces, rng, negatives)])
            pos = np.concatenate(pos) if pos else np.empty((0, 4))
            yield image, np.concatenate([pos, neg]), np.r_[np.ones(len(pos)), np.zeros(len(neg))]


def far(image: np.ndarray, side: int) -> np.ndarray:
    """The photo shrunk so its long side is ``side`` pixels, then grown back to its size: a far, soft face."""
    small, scale = shrink_to(image, side)
    return image if scale == 1.0 else cv2.resize(small, image.shape[1::-1], interpolation=cv2.INTER_LINEAR)


def soften(rgb: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The photo as a farther or poorer camera takes it, and the faces still worth learning there.

    Why: MTCNN's nets miss soft masked faces (far cameras, small faces in crowd
    photos grown to RNet's 24 and ONet's 48 px), and no threshold brings them
    back. The photo is shrunk so its median face spans ``SOFT_SIDES`` pixels (drawn
    uniformly) and grown back (``far``), so boxes keep their
    place; a face left under 12 px of detail, PNet's input, is no face to learn.
    """
    sides = faces[:, 2] - faces[:, 0]
    detail = rng.uniform(*SOFT_SIDES)
    scale = min(1.0, detail / float(np.median(sides)))
    soft = far(rgb, max(8, round(max(rgb.shape[:2]) * scale)))
    return soft, faces[sides * scale >= 12]


def crop_patches(data, mtcnn: OnnxMTCNN, rng: np.random.Generator, negatives: int, crops: int):
    """(image, boxes, labels) of face-free train scene crops grown by each still-photo border.

    ``detect_still`` retries a photo with replicate borders; their streaks are a
    texture the package never saw, and proposals there are the false faces of
    the photo path; so is the crop's centred square, the shape a tight face
    crop's positives have. All boxes are negatives.
    """
    borders = [0.0] + [b for b, _ in LENIENT.still_borders]
    for path, labels in tqdm(data.scenes, desc="crop patches", unit="img"):
        rgb = read_rgb(path)
        faces = np.array([b["box"] for b in labels], dtype=np.float64).reshape(-1, 4)
        for _ in range(crops):
            found = face_free_square(rng, rgb.shape, faces)
            if found is None:
                continue
            x, y, side = found
            crop = rgb[y : y + side, x : x + side]
            border = borders[int(rng.integers(len(borders)))]
            pad = int(round(border * side))
            grown = np.pad(crop, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            image = OnnxMTCNN._normalize(grown)
            hard = proposals(mtcnn, image)
            hard = hard[rng.permutation(len(hard))[:negatives]]
            # the crop itself, centred like a tight face crop: the geometry of the tight positives
            centred = jitter(tight_box(crop.shape) + pad, rng, 3)
            boxes = np.concatenate([hard, centred, random_negatives(grown.shape, np.empty((0, 4)), rng, negatives // 2)])
            yield image, boxes, np.zeros(len(boxes))


def tight_box(shape: tuple[int, ...], side: float = TIGHT_SIDE) -> np.ndarray:
    """The face square of a tight (eyes-to-chin) crop: centred, ``side`` times the long side."""
    h, w = shape[:2]
    half = side * max(h, w) / 2
    return np.array([w / 2 - half, h / 2 - half, w / 2 + half, h / 2 + half])


def still_patches(data, rng: np.random.Generator, jitters: int, tight: tuple[str, ...] = (), soft: float = 0.0):
    """(image, boxes, labels) per train still photo: the lenient cascade's face box, or, in a
    ``tight`` folder where it finds none, the centred ``tight_box`` (the hard positives); with
    probability ``soft`` also a softened copy (``soften``) with the box found on the sharp photo."""
    finder = make_finder("onnx", LENIENT)
    for folder, _, path in tqdm(data.stills, desc="still patches", unit="img"):
        rgb = read_rgb(path)
        found = detect_still(finder, rgb, LENIENT)
        if found:
            box = square(np.array([found[0].box], dtype=np.float64))[0]
        elif folder in tight:
            box = tight_box(rgb.shape)
        else:
            continue
        copies = [rgb]
        if soft and rng.random() < soft:
            soft_rgb, kept = soften(rgb, box[None], rng)
            if len(kept):
                copies.append(soft_rgb)
        pad = int(0.5 * max(rgb.shape[:2]))
        for image in copies:
            image = OnnxMTCNN._normalize(np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge"))
            boxes = jitter(box + pad, rng, jitters)
            yield image, boxes, np.ones(len(boxes))


def collect(data, rng: np.random.Generator, jitters: int, negatives: int, tight: tuple[str, ...] = (),
            crops: int = 0, mine: Path | None = None, soft: float = 0.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Patches per net (12, 24, 48 px) and their labels; hard negatives are proposals of the
    package's nets, or of the ``*_masked.onnx`` in ``mine`` (a previous round's); ``soft``: the
    share of photos also learned softened."""
    miner = (OnnxMTCNN(model_dir=mine, thresholds=LENIENT.thresholds, nets="masked") if mine
             else OnnxMTCNN(thresholds=LENIENT.thresholds))
    patches: dict[str, list[np.ndarray]] = {n: [] for n in SIZES}
    ys: list[np.ndarray] = []
    sources = [scene_patches(data, miner, rng, jitters, negatives, soft), still_patches(data, rng, jitters, tight, soft)]
    if crops:
        sources.append(crop_patches(data, miner, rng, negatives, crops))
    for source in sources:
        for image, boxes, y in source:
            if len(boxes) == 0:
                continue
            for name, size in SIZES.items():
                patches[name].append(crop_resize(image, boxes, size).astype(np.float32))
            ys.append(y)
    labels = np.concatenate(ys)
    return {n: (np.concatenate(p), labels) for n, p in patches.items()}
