"""Where frames come from: a webcam, a video file, an image, a folder, a stream.

``open_source(spec)`` checks the input up front and raises ``SourceError``
with a one-line reason for anything unusable, so the command line can say
what is wrong instead of printing a traceback. Live sources (cameras and
stream URLs, ``detector.live``) that drop mid-run are reopened with backoff;
files simply end. What a source could not read on the way (a damaged stretch
of a video, a broken photo in a folder) is counted in ``Source.unreadable``
for the run to report, never skipped in silence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from detector.images import MAX_SIDE, ImageError, Photo, load_photo
from detector.live import LatestFrameReader, LiveStatus, open_capture
from detector.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(Exception):
    """An input that cannot be read; the message is shown to the user as is."""


def read_photo(path: Path, max_side: int = MAX_SIDE) -> Photo:
    """A photo file, size-checked before decoding and decoded at most ``max_side`` large, or a SourceError."""
    if not path.exists():
        raise SourceError(f"no such file: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"empty file (0 bytes): {path}")
    try:
        return load_photo(path, max_side=max_side)
    except ImageError as err:
        raise SourceError(f"{err.message}: {path}" if err.too_large else f"not a readable image: {path}") from None
    except OSError as err:
        raise SourceError(f"cannot read {path}: {err.strerror}") from None


def read_image(path: Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """BGR image from a file, or a SourceError saying why not (datasets' photos are far under ``max_side``)."""
    return read_photo(path, max_side).image


@dataclass
class Source:
    """A named, iterable stream of frames. ``live`` sources may drop frames."""

    name: str
    frames: Callable[[], Iterator[Frame]] = field(default=lambda: iter(()), repr=False)
    """A new iterator over the frames each call (a looped file is iterated again)."""
    live: bool = False
    length: int | None = None
    """Frames expected (files and folders), for progress bars."""
    fps: float | None = None
    inputs: tuple[Path, ...] = ()
    """The files this source reads, which no output may write over."""
    status: LiveStatus | None = None
    """A live source's connection state, kept up to date by its reader thread."""
    unreadable: int = 0
    """Frames or photos that could not be read so far (a damaged stretch of a video, a broken file)."""
    stopping: bool = field(default=False, repr=False)
    """Set by ``stop``: the frames end at the next frame boundary."""

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def stop(self) -> None:
        """End the frames at the next boundary. Only sets a flag, so a signal handler may call it."""
        self.stopping = True

    @property
    def stills(self) -> bool:
        """Unrelated photos (an image or a folder: counted, no frame rate), judged one by one, never tracked."""
        return self.length is not None and self.fps is None

    @property
    def unit(self) -> str:
        return "images" if self.stills else "frames"


def open_source(spec: str | int, reconnect_delays: tuple[float, ...] = (0.5, 1, 2, 4, 8)) -> Source:
    """Turn a --source argument into a Source, failing early with a clear reason."""
    text = str(spec)
    if text.isdigit():
        return _live(int(text), f"camera {text}", f"no camera at index {text}", reconnect_delays)
    if text.lower().startswith(STREAM_PREFIXES):
        return _live(text, text, f"cannot open stream: {text}", reconnect_delays)
    path = Path(text)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.stat().st_size == 0:
        raise SourceError(f"empty file (0 bytes): {path}")
    if path.suffix.lower() in IMAGE_EXTS:
        photo = read_photo(path)
        frame = Frame(photo.image, 0, 0.0, str(path), scale=photo.scale)
        return Source(str(path), lambda: iter([frame]), length=1, inputs=(path,))
    return _video(path)


def _folder(path: Path) -> Source:
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not files:
        raise SourceError(f"no images in folder: {path}")
    source = Source(str(path), length=len(files), inputs=(path, *files))

    def frames() -> Iterator[Frame]:
        for i, file in enumerate(files):
            if source.stopping:
                return
            try:
                photo = read_photo(file)
            except SourceError as err:  # one bad file must not end a folder run; the run reports the count
                log.warning("skipped: %s", err)
                source.unreadable += 1
                continue
            yield Frame(photo.image, i, 0.0, str(file), scale=photo.scale)

    source.frames = frames
    return source


def _video(path: Path) -> Source:
    cap = cv2.VideoCapture(str(path))
    ok = cap.isOpened() and cap.read()[0]
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    cap.release()
    if not ok:
        raise SourceError(f"not a video or image OpenCV can read: {path}")
    fps = fps if 0 < fps < 1000 else 25.0
    source = Source(str(path), length=count or None, fps=fps, inputs=(path,))

    def frames() -> Iterator[Frame]:
        """Every frame that decodes; a damaged stretch is read past and counted, not taken for the end.

        A failed read before the container's frame count is reached is a frame
        lost (FFmpeg resumes at the next frame that decodes); reads stop at that
        count, or after as many failures in a row. The count is the container's
        estimate, often a frame or two over what decodes, so failures that run
        into the end count as lost only beyond ``end_slack`` frames (a cut-off file).
        """
        cap = cv2.VideoCapture(str(path))
        position, failed_run, end_slack = 0, 0, max(2, count // 100)
        try:
            while not source.stopping:
                ok, image = cap.read()
                if ok:
                    yield Frame(image, position, position / fps, str(path))
                    position, failed_run = position + 1, 0
                    continue
                if position >= count or failed_run >= max(count, 1):
                    return
                position, failed_run = position + 1, failed_run + 1
                source.unreadable += 1
        finally:
            cap.release()
            if failed_run <= end_slack:  # the count's estimate ran past the last frame: the end, not a loss
                source.unreadable -= failed_run

    source.frames = frames
    return source


def _live(spec: str | int, name: str, error: str, delays: tuple[float, ...]) -> Source:
    cap = open_capture(spec)
    ok = cap.isOpened() and cap.read()[0]
    cap.release()
    if not ok:
        raise SourceError(error)
    source = Source(name, live=True, status=LiveStatus())
    source.frames = lambda: _live_frames(lambda: open_capture(spec), source, delays)
    return source


def _live_frames(opener: Callable[[], cv2.VideoCapture], source: Source, delays: tuple[float, ...]) -> Iterator[Frame]:
    """Newest frames from a live source until it gives up or is stopped; the reader is joined on the way out."""
    reader = LatestFrameReader(opener, source.name, delays, source.status)
    reader.start()
    start, index = time.monotonic(), 0
    try:
        while not source.stopping:
            image = reader.latest()
            if image is None:
                if reader.gave_up:
                    return
                continue
            yield Frame(image, index, time.monotonic() - start, source.name)
            index += 1
    finally:
        reader.stop()
