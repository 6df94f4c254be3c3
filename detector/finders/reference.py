"""The ``mtcnn`` package as published, on TensorFlow: slow, kept as the yardstick the fast finder is checked against."""

from __future__ import annotations

import numpy as np

from detector.finders.base import FinderConfig
from detector.types import Detection


class ReferenceMTCNN:
    """The ``mtcnn`` package as published (TensorFlow): ``detect`` only."""

    refines = False

    def __init__(self, config: FinderConfig | None = None) -> None:
        try:
            from mtcnn import MTCNN  # heavy: imports TensorFlow
        except ImportError:  # the detector itself installs without TensorFlow
            raise ImportError("the reference finder needs TensorFlow and mtcnn: "
                              "pip install 'mask-detector[train]' (or pip install -e '.[train]' in a checkout)") from None

        self.config = config or FinderConfig()
        self._mtcnn = MTCNN()

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        t1, t2, t3 = thresholds or self.config.thresholds
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

    def refine(self, rgb: np.ndarray, boxes: list, min_score: float | None = None) -> list[Detection | None]:
        raise NotImplementedError("the reference finder cannot refine a box (refines is False)")

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        raise NotImplementedError("the reference finder cannot search framed squares (refines is False)")

    def detect_small(self, rgb: np.ndarray, min_face_size: int,
                     thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        raise NotImplementedError("the reference finder searches from its own floor only (refines is False)")
