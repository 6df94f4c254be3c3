"""A single photo is searched harder than a video frame: border retries, a finer search, an enlarged copy.

A photo is judged once, so it can afford the searches a stream cannot; each only adds faces that
overlap none already found (``apart``), so a harder search never moves a face the first one found.
"""

from __future__ import annotations

import cv2
import numpy as np

from detector.finders.base import FaceFinder, FinderConfig
from detector.track import iou_matrix
from detector.types import Detection, largest


def detect_with_border(
    finder: FaceFinder, rgb: np.ndarray, border: float = 0.25, fill: str = "replicate",
    thresholds: tuple[float, float, float] | None = None,
) -> list[Detection]:
    """Detect on the image grown by a border, boxes mapped back.

    Tight face crops (the usual dataset photo) leave MTCNN no context around
    the face; a border lets its pyramid see a whole face at a size it knows.
    ``replicate`` continues the edges (hair, clothes); ``mean`` is a flat
    canvas of the image's mean colour, i.e. the photo shrunk onto a backdrop.
    """
    h, w = rgb.shape[:2]
    pad = int(round(border * max(h, w)))
    if pad == 0:
        return finder.detect(rgb, thresholds)
    if fill == "mean":
        colour = [float(c) for c in rgb.reshape(-1, 3).mean(axis=0)]
        grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour)
    elif fill == "replicate":
        grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    else:
        raise ValueError(f"unknown border fill {fill!r} (choose replicate or mean)")
    out = []
    for d in finder.detect(grown, thresholds):
        x1, y1, x2, y2 = (v - pad for v in d.box)
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        kps = None if d.keypoints is None else d.keypoints - pad
        out.append(Detection(box, d.score, kps))
    return out


def apart(new: list[Detection], found: list[Detection], max_iou: float = 0.3) -> list[Detection]:
    """The detections of ``new`` that overlap none of ``found`` (IoU below ``max_iou``)."""
    if not new or not found:
        return list(new)
    overlap = iou_matrix(np.array([d.box for d in new], float), np.array([d.box for d in found], float))
    return [d for d, o in zip(new, overlap.max(axis=1)) if o < max_iou]


def detect_still(finder: FaceFinder, rgb: np.ndarray, config: FinderConfig | None = None) -> list[Detection]:
    """Faces in a single photo: as is first (plus, where faces were found, smaller ones a finer
    search adds: ``FinderConfig.still_small_faces``), then each border retry until one finds a
    face, then (where the finder can) centred squares for a photo framed around one face; last,
    a small photo's faces that only its enlarged copy shows (``FinderConfig.still_upscale``).

    ``config`` defaults to the finder's own.
    """
    config = config or finder.config
    found = finder.detect(rgb, config.still_thresholds)
    if found and config.still_small_faces and finder.refines:
        min_face, min_score = config.still_small_faces
        small = finder.detect_small(rgb, min_face, config.still_thresholds)
        found = found + apart([d for d in small if d.score >= min_score], found)
    for border, fill in config.still_borders:
        if found:
            break
        found = detect_with_border(finder, rgb, border, fill, config.still_thresholds)
    if not found and config.still_framed is not None and finder.refines:
        found = finder.framed(rgb, config.still_framed)
    if config.still_upscale and max(rgb.shape[:2]) <= config.still_upscale[2]:
        factor, min_score, _ = config.still_upscale
        grown = detect_grown(finder, rgb, factor, config.still_thresholds)
        found = found + apart([d for d in grown if d.score >= min_score], found)
    return found


def detect_grown(finder: FaceFinder, rgb: np.ndarray, factor: float,
                 thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
    """Detect on the image enlarged by ``factor``, boxes and keypoints mapped back: faces under
    the finder's smallest window become big enough for it."""
    grown = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    return unscaled(finder.detect(grown, thresholds), factor)


def unscaled(found: list[Detection], scale: float) -> list[Detection]:
    """Detections made on a copy resized by ``scale``, with box and keypoints back in the original image's pixels."""
    if scale == 1.0:
        return found
    return [Detection(tuple(v / scale for v in d.box), d.score, None if d.keypoints is None else d.keypoints / scale)
            for d in found]


def largest_still_face(finder: FaceFinder, bgr: np.ndarray) -> Detection | None:
    """The largest face of a BGR photo by the still-photo search, or None: the face a labelled
    photo is about, the one ``training`` crops and paints a mask on."""
    found = detect_still(finder, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return largest(found) if found else None
