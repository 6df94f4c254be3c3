"""The clips ``fps.py`` times: the demo clip, its left half, a 2x2 grid of faces, an empty 720p scene.

Made here from scikit-image's astronaut with the project's own mask painter, so a benchmark runs on a fresh
clone with no dataset; apart from ``fps.py`` because making a clip is not measuring one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def grid_clip(path: Path, landmarks: np.ndarray, faces: int, frames_per_state: int = 24, fps: float = 12.0) -> Path:
    """A 640x480 clip with ``faces`` (3 or 4) moving faces in a 2x2 grid, each cycling through the mask states."""
    import math

    import cv2

    from detector.synth.demo import masked_portraits

    portraits, states = masked_portraits(landmarks), ("worn", "under_nose", "on_chin", "none")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for index in range(len(states) * frames_per_state):
        canvas, t = np.full((480, 640, 3), 200, np.uint8), index / fps
        for i in range(faces):
            portrait = portraits[states[(index // frames_per_state + i) % len(states)]]
            zoom = 0.8 + 0.05 * math.sin(t * 1.3 + i)  # faces ~70-80 px wide: four people near a camera
            dx, dy = 10 * math.sin(t + i), 5 * math.cos(t * 0.7 + i)
            m = np.array([[zoom, 0, 160 - 236 * zoom + dx], [0, zoom, 110 - 120 * zoom + dy]], np.float32)
            cell = cv2.warpAffine(cv2.flip(portrait, 1) if i % 2 else portrait, m, (320, 240), borderMode=cv2.BORDER_REPLICATE)
            canvas[240 * (i // 2): 240 * (i // 2 + 1), 320 * (i % 2): 320 * (i % 2 + 1)] = cell
        writer.write(canvas)
    writer.release()
    return path


def empty_clip(path: Path, seconds: float = 10.0, fps: float = 30.0) -> Path:
    """A 720p scene with no one in it (scikit-image's ``coffee``, enlarged, with a camera's grain): the cost of
    watching an empty doorway."""
    import cv2
    from skimage import data

    scene = cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (1280, 720), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    for _ in range(int(seconds * fps)):
        writer.write(np.clip(scene + rng.normal(0, 2.0, scene.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def make_clip(pipeline, faces: int, folder: Path) -> Path:
    """The demo clip (2 faces), its left half alone (1 face), a grid clip (3-4 faces) or an empty 720p scene (0)."""
    from detector.synth.demo import SEQUENCE, astronaut_landmarks, build_demo_clip, make_demo_clip

    if faces == 0:
        return empty_clip(folder / "empty720p.mp4")
    if faces == 2:
        return make_demo_clip(pipeline, folder)
    landmarks = astronaut_landmarks(pipeline)
    if faces == 1:
        return build_demo_clip(folder / "one.mp4", landmarks, sequence=tuple((left, None) for left, _ in SEQUENCE))
    return grid_clip(folder / f"grid{faces}.mp4", landmarks, faces)
