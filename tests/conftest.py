"""Shared fixtures: the real pipeline, the embedded demo clip, a CLI runner.

Nothing here needs ../shared/data: inputs are made from scikit-image's
public-domain ``astronaut`` with masks painted by the project's own code.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import httpx
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
    from detector.synth.demo import astronaut_landmarks

    return astronaut_landmarks(pipeline)


@pytest.fixture(scope="session")
def portraits(astronaut_landmarks) -> dict[str, np.ndarray]:
    """The astronaut with no mask, a worn mask, one under the nose, one on the chin (BGR)."""
    from detector.synth.demo import masked_portraits

    return masked_portraits(astronaut_landmarks)


@pytest.fixture(scope="session")
def demo_clip(pipeline, tmp_path_factory) -> Path:
    from detector.synth.demo import make_demo_clip

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


def jittered(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A shifted, slightly zoomed copy, so copies are not pixel-identical."""
    h, w = image.shape[:2]
    zoom = rng.uniform(0.85, 1.1)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-8, 8), zoom)
    m[:, 2] += rng.uniform(-20, 20, 2)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="session")
def labelled_folder(astronaut_landmarks, portraits, tmp_path_factory) -> Path:
    """A labelled folder of painted astronauts: 12 per label, random mask styles (training tests)."""
    from detector.synth.masks import MaskStyle, paint_mask

    root = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(3)
    states = {"mask": ["worn"], "incorrect": ["under_nose", "on_chin"], "no_mask": [None]}
    for label, choices in states.items():
        (root / label).mkdir()
        for i in range(12):
            state = choices[i % len(choices)]
            image = portraits["none"] if state is None else paint_mask(
                portraits["none"], astronaut_landmarks, state, MaskStyle.random(rng), rng)
            cv2.imwrite(str(root / label / f"{label}_{i}.jpg"), jittered(image, rng)[:400, 60:460])
    return root


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose header claims a huge image (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jpeg(side: int | None = None) -> bytes:
    """The astronaut (one face) as JPEG, optionally scaled to ``side`` pixels square."""
    from detector.synth.demo import astronaut_bgr

    image = astronaut_bgr()
    if side:
        image = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image)[1].tobytes()


def start_server(args: list[str], log: Path, command: str = "serve") -> tuple[subprocess.Popen, str]:
    """``python -m detector COMMAND ARGS`` (``serve`` or ``dashboard``) on a free port, once /health
    answers (60 s at most)."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "detector", command, "--port", str(port), *args],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{command} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    pytest.fail(f"{command} did not come up in 60 s:\n{log.read_text()}")


def wait_for(check, seconds: float = 90.0):
    """``check()``'s first true value, asked every half second (the test fails after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"not within {seconds} s")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGINT, as Ctrl-C would; the exit status (killed after 20 s)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
