"""The embedded demo clip: a public-domain photo with masks painted on it.

scikit-image ships NASA's public-domain ``astronaut`` portrait; this module
paints masks on it in every state (worn, under the nose, on the chin, none),
places two copies side by side in a 640x480 frame with a little motion, and
writes a short clip. It needs no camera, no download and no dataset, so the
README's first command works on any machine.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import cv2
import numpy as np

from detector.synth.masks import MaskStyle, paint_mask

SEQUENCE = (("worn", "none"), ("under_nose", "worn"), ("on_chin", "under_nose"), ("none", "on_chin"))
"""(left face, right face) mask states, one pair per segment of the clip."""
EXPECTED = {"worn": "mask", "under_nose": "incorrect", "on_chin": "incorrect", "none": "no_mask"}


def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def masked_portraits(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """The astronaut in each mask state (plus ``none``), 512x512 BGR."""
    image = astronaut_bgr()
    styles = {"worn": MaskStyle(), "under_nose": MaskStyle(colour=(40, 40, 40), pattern="plain"),
              "on_chin": MaskStyle(colour=(235, 235, 235), pattern="pleats")}
    out = {"none": image}
    for state, style in styles.items():
        out[state] = paint_mask(image, landmarks, state, style, np.random.default_rng(7))
    return out


def _place(canvas: np.ndarray, portrait: np.ndarray, x: int, t: float, mirror: bool) -> None:
    """Paste a moving, slightly zooming 300x460 cut of the portrait at column x."""
    p = cv2.flip(portrait, 1) if mirror else portrait
    zoom = 0.92 + 0.06 * math.sin(t * 1.3)
    dx, dy = 12 * math.sin(t), 6 * math.cos(t * 0.7)
    m = np.array([[zoom, 0, 150 - 256 * zoom + dx], [0, zoom, 150 - 130 * zoom + dy]], np.float32)
    tile = cv2.warpAffine(p, m, (300, 460), borderMode=cv2.BORDER_REPLICATE)
    canvas[10:470, x : x + 300] = tile


def build_demo_clip(
    path: Path, landmarks: np.ndarray, frames_per_state: int = 24, fps: float = 12.0,
    sequence: tuple[tuple[str, str | None], ...] = SEQUENCE,
) -> Path:
    """Write a clip of ``sequence`` (left, right) mask states to ``path`` (mp4); None leaves a side empty."""
    portraits = masked_portraits(landmarks)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    index = 0
    for left, right in sequence:
        for _ in range(frames_per_state):
            canvas = np.full((480, 640, 3), 200, np.uint8)
            t = index / fps
            _place(canvas, portraits[left], 10, t, mirror=False)
            if right is not None:
                _place(canvas, portraits[right], 330, t + 1.0, mirror=True)
            writer.write(canvas)
            index += 1
    writer.release()
    return path


def astronaut_landmarks(pipeline) -> np.ndarray:
    """The astronaut's 68 landmarks, found by the pipeline's own finder and landmarker."""
    image = astronaut_bgr()
    face = pipeline.detect(image)[0]
    return pipeline.landmarker(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), face.box)


def make_demo_clip(pipeline, folder: Path | None = None, **kwargs) -> Path:
    """Build the demo clip (in a new temp folder unless given) for this pipeline."""
    folder = Path(folder or tempfile.mkdtemp(prefix="mask-demo-"))
    return build_demo_clip(folder / "demo.mp4", astronaut_landmarks(pipeline), **kwargs)


def expected_labels(frame_index: int, frames_per_state: int = 24) -> tuple[str, str]:
    """Ground truth (left, right) labels for a demo frame."""
    left, right = SEQUENCE[min(frame_index // frames_per_state, len(SEQUENCE) - 1)]
    return EXPECTED[left], EXPECTED[right]
