"""How well a face can be judged in one frame: a quality in [0, 1] from what can be measured.

A verdict taken from a profile, a blurred frame or a face half behind a hand
is a guess, and a person's verdict should not flip on a guess: a track weighs
each frame's evidence by this quality (``detector.track``). It is the product
of four factors, each 1 on an ordinary clear view and falling to 0 where the
view is useless, so any one of them can rule a frame out:

    size         the face box's short side: 0 at 16 px, 1 from 40 px (the video search's floor)
    frontalness  yaw (the nose tip off the eyes' midpoint, in eye distances) and
                 pitch (the nose tip's height between the eyes and the chin)
    sharpness    the variance of the Laplacian over the eyes and brow of the aligned crop,
                 the part a mask never covers
    fit          how far the landmark fit's anchor points sit from the alignment
                 template (a fit on a hand, a collar or half a face lands far off)

The ranges were read off 537 train-side scene faces (``scenes-ilc2021``) and
the same faces blurred (sigma 2.5 px): frontal views have |yaw| under 0.29 and
pitch 0.19-0.46 (5th-95th percentiles), the fit residual is under 0.08 of the
crop, and blurring drops the sharpness median from 149 to 7. Yaw and pitch read
the nose tip, the one landmark of the lower face whose left-right place holds
under a mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detector.align import CROP_SIZE, template_residual

SIZE_RANGE = (16.0, 40.0)
"""Short side of the box (px) at which the size factor is 0 and 1: 1 from the video search's own 40 px floor."""
YAW_FREE, YAW_ZERO = 0.20, 0.60
"""|yaw| up to the first costs nothing; at the second the view counts as a profile (factor 0)."""
PITCH_CENTRE, PITCH_FREE, PITCH_ZERO = 0.33, 0.12, 0.30
"""Pitch's frontal value, the deviation that costs nothing and the one that rules a view out. Wide:
under a mask dlib guesses where the nose tip is, and its height jitters (std 0.059 of the eye-to-chin
distance on the demo clip's painted masks, 0.006 on its bare faces) while its left-right place holds."""
SHARP_RANGE = (8.0, 100.0)
"""Laplacian variance of the upper crop at which the sharpness factor is 0 and 1 (log scale between)."""
FIT_FREE, FIT_ZERO = 0.05, 0.12
"""Fit residual (share of the crop's side) that costs nothing, and the one that rules a fit out."""
UPPER = (slice(15, 55), slice(15, 81))
"""Rows and columns of the 96 px aligned crop holding the eyes and brow."""
GOOD_QUALITY = 0.5
"""A view at least this good counts as a clear one: 87 % of the 261 train-side scene faces of 40 px and more
pass (median 1.0), and 43 % of the same faces blurred (sigma 2.5 px; median 0.36)."""


def ramp(value: float, zero: float, one: float) -> float:
    """0 at ``zero``, 1 at ``one``, linear between, clipped."""
    return float(np.clip((value - zero) / (one - zero), 0.0, 1.0))


@dataclass
class Quality:
    """The four factors of one face's view, and their product."""

    size: float
    frontal: float
    sharp: float
    fit: float

    @property
    def value(self) -> float:
        return self.size * self.frontal * self.sharp * self.fit


def frontalness(crop_landmarks: np.ndarray) -> float:
    """1 for a face turned to the camera, 0 for a profile or a face tipped far up or down."""
    left, right = crop_landmarks[36:42].mean(axis=0), crop_landmarks[42:48].mean(axis=0)
    eyes, nose, chin = (left + right) / 2, crop_landmarks[30], crop_landmarks[8]
    yaw = abs(nose[0] - eyes[0]) / max(float(np.linalg.norm(right - left)), 1e-6)
    pitch = (nose[1] - eyes[1]) / max(float(chin[1] - eyes[1]), 1e-6)
    return ramp(yaw, YAW_ZERO, YAW_FREE) * ramp(abs(pitch - PITCH_CENTRE), PITCH_ZERO, PITCH_FREE)


def sharpness(crop: np.ndarray) -> float:
    """1 for a crisp view of the eyes and brow, 0 for a blurred one."""
    variance = float(cv2.Laplacian(crop[UPPER], cv2.CV_32F).var())
    return ramp(np.log(max(variance, 1e-6)), np.log(SHARP_RANGE[0]), np.log(SHARP_RANGE[1]))


def measure(box: tuple[float, float, float, float], landmarks: np.ndarray, matrix: np.ndarray,
            crop: np.ndarray, crop_landmarks: np.ndarray) -> Quality:
    """The quality of one face's view, from what the pipeline already has for it (all cheap: no model runs)."""
    side = min(box[2] - box[0], box[3] - box[1])
    residual = template_residual(landmarks, matrix) / CROP_SIZE
    return Quality(size=ramp(side, *SIZE_RANGE), frontal=frontalness(crop_landmarks), sharp=sharpness(crop),
                   fit=ramp(residual, FIT_ZERO, FIT_FREE))
