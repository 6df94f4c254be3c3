"""Where frames come from: a webcam, a video file, an image, a folder, a stream.

``open_source(spec)`` checks the input up front and raises ``SourceError``
with a one-line reason for anything unusable, so the command line can say
what is wrong instead of printing a traceback. Live sources (cameras and
stream URLs) that drop mid-run are reopened with backoff; files simply end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detector.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(Exception):
    """An input that cannot be read; the message is shown to the user as is."""


def read_image(path: Path) -> np.ndarray:
    """BGR image from a file, or a SourceError saying why not."""
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"empty file (0 bytes): {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"not a readable image: {path}")
    return image


@dataclass
class Source:
    """A named, iterable stream of frames. ``live`` sources may drop frames."""

    name: str
    frames: Callable[[], Iterator[Frame]]
    live: bool = False
    length: int | None = None
    """Frames expected (files and folders), for progress bars."""
    fps: float | None = None

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    @property
    def stills(self) -> bool:
        """Unrelated photos (an image or a folder: counted, no frame rate), judged one by one, never tracked."""
        return self.length is not None and self.fps is None


def open_source(spec: str | int, reconnect_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8)) -> Source:
    """Turn a --source argument into a Source, failing early with a clear reason."""
    text = str(spec)
    if text.isdigit():
        return _camera(int(text), reconnect_delays)
    if text.lower().startswith(STREAM_PREFIXES):
        return _stream(text, reconnect_delays)
    path = Path(text)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"empty file (0 bytes): {path}")
    if path.suffix.lower() in IMAGE_EXTS:
        image = read_image(path)
        return Source(str(path), lambda: iter([Frame(image, 0, 0.0, str(path))]), length=1)
    return _video(path)


def _folder(path: Path) -> Source:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise SourceError(f"no images in folder: {path}")

    def frames() -> Iterator[Frame]:
        for i, file in enumerate(files):
            try:
                image = read_image(file)
            except SourceError as err:  # one bad file must not end a folder run
                log.warning("skipped: %s", err)
                continue
            yield Frame(image, i, 0.0, str(file))

    return Source(str(path), frames, length=len(files))


def _video(path: Path) -> Source:
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened() and cap.read()[0]
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    if not ok:
        raise SourceError(f"not a video or image OpenCV can read: {path}")
    fps = fps if 0 < fps < 1000 else 25.0

    def frames() -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(path))
        try:
            index = 0
            while True:
                ok, image = cap.read()
                if not ok:
                    return
                yield Frame(image, index, index / fps, str(path))
                index += 1
        finally:
            cap.release()

    return Source(str(path), frames, length=count or None, fps=fps)


def _camera(index: int, delays: tuple[float, ...]) -> Source:
    cap = cv2.VideoCapture(index)
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if not ok:
        raise SourceError(f"no camera at index {index}")
    return Source(f"camera {index}", lambda: _live_frames(lambda: cv2.VideoCapture(index), f"camera {index}", delays), live=True)


def _stream(url: str, delays: tuple[float, ...]) -> Source:
    cap = cv2.VideoCapture(url)
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if not ok:
        raise SourceError(f"cannot open stream: {url}")
    return Source(url, lambda: _live_frames(lambda: cv2.VideoCapture(url), url, delays), live=True)


def _live_frames(opener: Callable[[], cv2.VideoCapture], name: str, delays: tuple[float, ...]) -> Iterator[Frame]:
    """Newest frames from a live source, reopening it with backoff when it drops.

    A reader thread keeps only the latest frame, so a slow pipeline shows what
    the camera sees now rather than a growing backlog.
    """
    reader = LatestFrameReader(opener, name, delays)
    reader.start()
    start, index = time.monotonic(), 0
    try:
        while True:
            image = reader.latest()
            if image is None:
                if reader.gave_up:
                    return
                continue
            yield Frame(image, index, time.monotonic() - start, name)
            index += 1
    finally:
        reader.stop()


class LatestFrameReader(threading.Thread):
    """Reads a live capture continuously, keeping only the newest frame."""

    def __init__(self, opener: Callable[[], cv2.VideoCapture], name: str, delays: tuple[float, ...]) -> None:
        super().__init__(daemon=True)
        self.opener, self.source_name, self.delays = opener, name, delays
        self._frame: np.ndarray | None = None
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self.gave_up = False
        self.reconnects = 0

    def run(self) -> None:
        cap = self.opener()
        while not self._stopped.is_set():
            ok, image = cap.read()
            if ok:
                with self._cond:
                    self._frame = image
                    self._cond.notify_all()
                continue
            cap.release()
            cap = self._reopen()
            if cap is None:
                break
        if cap is not None:
            cap.release()
        with self._cond:
            self.gave_up = True
            self._cond.notify_all()

    def _reopen(self) -> cv2.VideoCapture | None:
        for attempt, delay in enumerate(self.delays, 1):
            log.warning("%s lost; reopening in %.1f s (try %d of %d)", self.source_name, delay, attempt, len(self.delays))
            if self._stopped.wait(delay):
                return None
            cap = self.opener()
            if cap.isOpened():
                self.reconnects += 1
                log.warning("%s reopened", self.source_name)
                return cap
            cap.release()
        log.error("%s did not come back after %d tries; stopping", self.source_name, len(self.delays))
        return None

    def latest(self, timeout: float = 1.0) -> np.ndarray | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds."""
        with self._cond:
            if self._frame is None and not self.gave_up:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def stop(self) -> None:
        self._stopped.set()
