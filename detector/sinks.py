"""Where results go: a live window, an annotated video, annotated images, JSON lines.

Every sink has ``write(frame, annotated)`` and ``close()``; the run loop closes
them in a ``finally`` so that a Ctrl-C still leaves a finished, playable video
and a complete JSON file.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from detector.sources import IMAGE_EXTS, Source
from detector.types import Frame

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class SinkError(Exception):
    """An output that cannot be written; the message is shown as is."""


def frame_record(frame: Frame) -> dict:
    """One line of the --json contract."""
    return {
        "source": frame.source,
        "frame": frame.index,
        "time": round(frame.time, 4),
        "faces": [f.to_json() for f in frame.faces],
    }


class JsonSink:
    """One JSON object per frame, one per line, to a file or to stdout (``-``)."""

    def __init__(self, target: str) -> None:
        if target == "-":
            self._file: IO[str] = sys.stdout
            self._own = False
        else:
            try:
                self._file = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            except OSError as err:
                raise SinkError(f"cannot write JSON to {target}: {err.strerror}") from None
            self._own = True

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        self._file.write(json.dumps(frame_record(frame)) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._own:
            self._file.close()


class VideoSink:
    """The annotated frames as a video file, opened on the first frame."""

    def __init__(self, path: str, fps: float = 25.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC:
            raise SinkError(f"unsupported video type {self.path.suffix!r} (use one of {', '.join(FOURCC)})")
        if not self.path.parent.exists():
            raise SinkError(f"folder does not exist: {self.path.parent}")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        h, w = annotated.shape[:2]
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video: {self.path}")
            self._size = (w, h)
        if (w, h) != self._size:  # folders of mixed sizes: fit into the first frame's size
            annotated = cv2.resize(annotated, self._size)
        self._writer.write(annotated)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()  # writes the index: the file is playable after this
            self._writer = None


class ImageSink:
    """The annotated picture of a one-photo source, as an image file (type from its name)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise SinkError(f"folder does not exist: {self.path.parent}")
        self.frames = 0

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if self.frames:
            raise SinkError(f"{self.path} holds one picture and the source gave more: give --output a folder")
        if not cv2.imwrite(str(self.path), annotated):
            raise SinkError(f"cannot write image: {self.path}")
        self.frames += 1

    def close(self) -> None:
        pass


class FolderSink:
    """Each annotated frame as an image in a folder, made if missing: a folder of photos in, the same
    names out; a video or camera gives ``<name>_<frame>.jpg``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"not a folder: {self.path}")
        if not self.path.parent.exists():
            raise SinkError(f"folder does not exist: {self.path.parent}")
        self.frames = 0

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        source = Path(frame.source)
        name = source.name if source.suffix.lower() in IMAGE_EXTS else f"{source.stem or 'frame'}_{frame.index:06d}.jpg"
        if not self.frames:  # made on the first frame, as a video is opened: a run that shows nothing leaves nothing
            self.path.mkdir(exist_ok=True)
        if not cv2.imwrite(str(self.path / name), annotated):
            raise SinkError(f"cannot write image: {self.path / name}")
        self.frames += 1

    def close(self) -> None:
        pass


def output_sink(path: str, source: Source) -> VideoSink | ImageSink | FolderSink:
    """The sink ``--output PATH`` asks for: a video by its type, an image for a single photo, else a folder.

    The user's own photos are never written over: an output that is the
    source itself, or the folder it reads, is refused.
    """
    out, source_path = Path(path), Path(source.name)
    guarded = {source_path.resolve()}  # a photo, a folder of photos or a video
    if source.stills and not source_path.is_dir():
        guarded.add(source_path.parent.resolve())  # the folder a single photo is in
    if out.resolve() in guarded:
        raise SinkError(f"--output {path} would write over the source: give another name")
    suffix = out.suffix.lower()
    if out.is_dir() or not suffix:
        return FolderSink(path)
    if suffix in FOURCC:
        return VideoSink(path, fps=source.fps or 15.0)
    if suffix in IMAGE_EXTS:
        if not (source.stills and source.length == 1):
            raise SinkError(f"an image ({suffix}) holds one picture: give --output a folder, or a video ({', '.join(FOURCC)})")
        return ImageSink(path)
    raise SinkError(f"unsupported output type {suffix!r}: a video ({', '.join(FOURCC)}), an image "
                    f"({', '.join(sorted(IMAGE_EXTS))}) or a folder")


def display_available() -> bool:
    """Whether a window can be shown (an X or Wayland display on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink:
    """The live window; ``q`` or Esc asks the run to stop."""

    def __init__(self, title: str = "mask detector", fps: float | None = None) -> None:
        self.title = title
        self.quit_requested = False
        self.failed = False
        self.period = 1.0 / fps if fps else 0.0
        """A video file is shown at its own speed, not as fast as the pipeline runs."""
        self._due = 0.0

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if self.failed:
            return
        try:
            cv2.imshow(self.title, annotated)
            now = time.monotonic()
            wait_ms = max(1, int(round((self._due - now) * 1000)))
            self._due = max(self._due, now) + self.period
            key = cv2.waitKey(wait_ms) & 0xFF
        except cv2.error as err:  # a DISPLAY that does not answer, or OpenCV built without a GUI
            self.failed = True
            print(f"cannot open a window ({str(err).strip().splitlines()[-1][:80]}): running headless", file=sys.stderr)
            return
        if key in (ord("q"), 27):
            self.quit_requested = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
