"""dlib's 68-point landmarks, placed inside a face box.

The predictor file ships in the PyPI package ``face-recognition-models``; it
is never downloaded at run time.
"""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np


def predictor_path() -> Path:
    """Where ``face-recognition-models`` installed the 68-point predictor."""
    import importlib.resources

    return Path(
        str(importlib.resources.files("face_recognition_models") / "models" / "shape_predictor_68_face_landmarks.dat")
    )


class Landmarker:
    """Places 68 points in a box found by MTCNN.

    dlib's predictor was trained on boxes from dlib's own HOG detector, which
    sit lower and tighter than MTCNN's (MTCNN includes the forehead), so the box
    is nudged toward that shape first; the fit is markedly better for it.
    """

    def __init__(self, path: Path | None = None) -> None:
        path = path or predictor_path()
        if not path.exists():
            raise FileNotFoundError(f"landmark model not found: {path} (pip install face-recognition-models)")
        self._predictor = dlib.shape_predictor(str(path))

    def __call__(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """(68, 2) float32 landmarks in image pixels for one face box."""
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        rect = dlib.rectangle(
            int(round(x1 + 0.05 * w)), int(round(y1 + 0.12 * h)),
            int(round(x2 - 0.05 * w)), int(round(y2 + 0.02 * h)),
        )
        shape = self._predictor(gray, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
