"""Finding faces: MTCNN boxes and five keypoints.

Two interchangeable finders with one ``detect(rgb) -> list[Detection]`` method:
``OnnxMTCNN`` (the package's own networks exported to ONNX, run by
onnxruntime: fast, no TensorFlow) and ``ReferenceMTCNN`` (the ``mtcnn`` package
itself, on TensorFlow: slow, kept as the yardstick the fast one is checked
against).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from detector.types import Detection


class FaceFinder(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


@dataclass
class FinderConfig:
    """Knobs shared by both finders.

    The default thresholds are lower than the package's (0.6, 0.7, 0.8): a
    mask hides the nose and mouth MTCNN was trained on, and at the package's
    defaults it misses a large share of masked faces.
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.6, 0.7)
    min_score: float = 0.8
    """Final score a face must reach to be reported at all."""


class ReferenceMTCNN:
    """The ``mtcnn`` package as published (TensorFlow)."""

    def __init__(self, config: FinderConfig | None = None) -> None:
        from mtcnn import MTCNN  # heavy: imports TensorFlow

        self.config = config or FinderConfig()
        self._mtcnn = MTCNN()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        t1, t2, t3 = self.config.thresholds
        found = self._mtcnn.detect_faces(
            rgb, box_format="xyxy", threshold_pnet=t1, threshold_rnet=t2, threshold_onet=t3
        )
        out = []
        for f in found or []:
            kp = f["keypoints"]
            points = np.array(
                [kp[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")],
                dtype=np.float32,
            )
            if f["confidence"] >= self.config.min_score:
                out.append(Detection(tuple(float(v) for v in f["box"]), float(f["confidence"]), points))
        return out


def make_finder(backend: str = "onnx", config: FinderConfig | None = None) -> FaceFinder:
    """The face finder by name: ``onnx`` (default, fast) or ``reference`` (TensorFlow)."""
    config = config or FinderConfig()
    if backend == "reference":
        return ReferenceMTCNN(config)
    if backend == "onnx":
        from detector.mtcnn_onnx import OnnxMTCNN

        return _Filtered(
            OnnxMTCNN(min_face_size=config.min_face_size, thresholds=config.thresholds),
            config.min_score,
        )
    raise ValueError(f"unknown face finder {backend!r} (choose onnx or reference)")


class _Filtered:
    """Drops detections under a final score, keeping the finder's other methods."""

    def __init__(self, finder, min_score: float) -> None:
        self.finder, self.min_score = finder, min_score

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [d for d in self.finder.detect(rgb) if d.score >= self.min_score]

    def refine(self, rgb: np.ndarray, boxes: list) -> list[Detection | None]:
        return self.finder.refine(rgb, boxes)


def detect_with_border(finder: FaceFinder, rgb: np.ndarray, border: float = 0.25) -> list[Detection]:
    """Detect on the image grown by a replicated border, boxes mapped back.

    Tight face crops (the usual dataset photo) leave MTCNN no context around
    the face; a border lets its pyramid see a whole face at a size it knows.
    """
    h, w = rgb.shape[:2]
    pad = int(round(border * max(h, w)))
    if pad == 0:
        return finder.detect(rgb)
    grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    out = []
    for d in finder.detect(grown):
        x1, y1, x2, y2 = (v - pad for v in d.box)
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        kps = None if d.keypoints is None else d.keypoints - pad
        out.append(Detection(box, d.score, kps))
    return out


def detect_still(finder: FaceFinder, rgb: np.ndarray) -> list[Detection]:
    """Faces in a single photo: as is first, then with a border if none was found."""
    found = finder.detect(rgb)
    return found if found else detect_with_border(finder, rgb)
