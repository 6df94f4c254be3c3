"""Shared fixtures: the real pipeline, the embedded demo clip, a CLI runner.

Nothing here needs ../shared/data: inputs are made from scikit-image's
public-domain ``astronaut`` with masks painted by the project's own code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def pipeline():
    from detector.pipeline import Pipeline

    return Pipeline()


@pytest.fixture(scope="session")
def astronaut_landmarks(pipeline) -> np.ndarray:
    from detector.demo import astronaut_landmarks

    return astronaut_landmarks(pipeline)


@pytest.fixture(scope="session")
def portraits(astronaut_landmarks) -> dict[str, np.ndarray]:
    """The astronaut with no mask, a worn mask, one under the nose, one on the chin (BGR)."""
    from detector.demo import masked_portraits

    return masked_portraits(astronaut_landmarks)


@pytest.fixture(scope="session")
def demo_clip(pipeline, tmp_path_factory) -> Path:
    from detector.demo import make_demo_clip

    return make_demo_clip(pipeline, tmp_path_factory.mktemp("demo"), frames_per_state=12)


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame OpenCV can actually decode from a video file."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            cap.release()
            return frames
        frames.append(image)


def count_frames(path: Path) -> int:
    """Frames OpenCV can actually decode from a video file."""
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m detector ARGS`` in a subprocess, as a user would run it."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "detector", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
