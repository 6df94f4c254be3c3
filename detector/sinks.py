"""Where results go: an annotated video, annotated images, JSON lines.

Every sink has ``write(frame, annotated)`` and ``close()``; the run loop closes
them in a ``finally``, so a Ctrl-C or a SIGTERM still leaves a finished,
playable video and a complete JSON file. Files are written under a temporary
name and renamed into place when complete (``detector.atomic``), and
``check_outputs`` refuses, before anything is opened, an output that would
write over an input or over another output: nothing the user had is lost.
"""

from __future__ import annotations

import json
import os
import re
import sys
from itertools import permutations
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from detector.atomic import AtomicFile, same_file, write_bytes
from detector.sources import IMAGE_EXTS, Source
from detector.types import Frame

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


class SinkError(Exception):
    """An output that cannot be written; the message is shown as is."""


class OutputClosed(Exception):
    """The reader of standard output went away (``... --json - | head -1``): stop quietly, as Unix tools do."""


def frame_record(frame: Frame) -> dict:
    """One line of the --json contract."""
    return {
        "source": frame.source,
        "frame": frame.index,
        "time": round(frame.time, 4),
        "faces": [f.to_json(frame.scale) for f in frame.faces],
    }


def writable_folder(path: Path, what: str) -> None:
    """A SinkError unless ``path`` (an output's folder) exists and is a folder, checked before the models load."""
    if not path.exists():
        raise SinkError(f"cannot write {what}: folder does not exist: {path}")
    if not path.is_dir():
        raise SinkError(f"cannot write {what}: not a folder: {path}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise SinkError(f"cannot write {what}: folder is not writable: {path}")


class FileSink:
    """A sink that writes one file (``--json FILE``, a video, one image): it claims exactly that path."""

    option = "--output"
    kind = "an image"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise SinkError(f"{self.option} {self.path} is a folder: give a file name")
        writable_folder(self.path.parent, f"{self.kind} to {self.path}")
        self.frames = 0

    def claims(self, path: Path) -> bool:
        """Whether this sink may write at ``path``."""
        return same_file(path, self.path)

    def targets(self) -> list[Path]:
        return [self.path]


class JsonSink(FileSink):
    """One JSON object per frame, one per line, to a file or to stdout (``-``)."""

    option = "--json"
    kind = "JSON"

    def __init__(self, target: str) -> None:
        self.stdout = target == "-"
        if self.stdout:
            self.path, self.frames = Path(target), 0
        else:
            super().__init__(target)
        self._file: IO[str] | None = sys.stdout if self.stdout else None
        self._out: AtomicFile | None = None

    def claims(self, path: Path) -> bool:
        return not self.stdout and super().claims(path)

    def targets(self) -> list[Path]:
        return [] if self.stdout else [self.path]

    def _open(self) -> IO[str]:
        self._out = AtomicFile(self.path)
        try:
            self._file = open(self._out.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as err:
            raise SinkError(f"cannot write JSON to {self.path}: {err.strerror}") from None
        return self._file

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        out = self._file or self._open()
        try:
            out.write(json.dumps(frame_record(frame)) + "\n")
            out.flush()
        except BrokenPipeError:
            raise OutputClosed from None
        except OSError as err:
            self._abandon()
            raise SinkError(f"cannot write JSON to {'standard output' if self.stdout else self.path}: "
                            f"{err.strerror}") from None

    def close(self) -> None:
        """Finish the file and put it in place; a run that judged nothing still leaves an empty one."""
        if self.stdout or (self._out is not None and self._out.done):
            return
        try:
            out = self._file or self._open()
            out.close()
            self._out.commit()
        except OSError as err:
            self._abandon()
            raise SinkError(f"cannot write JSON to {self.path}: {err.strerror}") from None

    def _abandon(self) -> None:
        if self._out is not None:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError:
                    pass
            self._out.discard()


class VideoSink(FileSink):
    """The annotated frames as a video file, opened on the first frame."""

    kind = "a video"

    def __init__(self, path: str, fps: float = 25.0) -> None:
        super().__init__(path)
        if self.path.suffix.lower() not in FOURCC:
            raise SinkError(f"unsupported video type {self.path.suffix!r} (use one of {', '.join(FOURCC)})")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._out: AtomicFile | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        h, w = annotated.shape[:2]
        if self._writer is None:
            self._out = AtomicFile(self.path)
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._out.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                self._out.discard()
                raise SinkError(f"cannot write video: {self.path}")
            self._size = (w, h)
        if (w, h) != self._size:  # folders of mixed sizes: fit into the first frame's size
            annotated = cv2.resize(annotated, self._size)
        self._writer.write(annotated)
        self.frames += 1

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.release()  # writes the index: the file is playable after this
        self._writer = None
        try:
            self._out.commit()
        except OSError as err:
            self._out.discard()
            raise SinkError(f"cannot write video {self.path}: {err.strerror}") from None


class ImageSink(FileSink):
    """The annotated picture of a one-photo source, as an image file (type from its name)."""

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if self.frames:
            raise SinkError(f"{self.path} holds one picture and the source gave more: give --output a folder")
        save_image(self.path, annotated)
        self.frames += 1

    def close(self) -> None:
        pass


def save_image(path: Path, image: np.ndarray) -> None:
    """An image file written atomically, its type from its name, or a SinkError."""
    ok, data = cv2.imencode(path.suffix.lower() or ".jpg", image)
    if not ok:
        raise SinkError(f"cannot encode image: {path}")
    try:
        write_bytes(path, data.tobytes())
    except OSError as err:
        raise SinkError(f"cannot write image {path}: {err.strerror}") from None


class FolderSink:
    """Each annotated frame as an image in a folder, made if missing: a folder of photos in, the same
    names out; a video or camera gives ``<name>_<frame>.jpg``."""

    option = "--output"

    def __init__(self, path: str, source: Source) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"not a folder: {self.path}")
        writable_folder(self.path if self.path.is_dir() else self.path.parent, f"into {self.path}")
        self.photo_names = {p.name for p in source.inputs if p.is_file()} if source.stills else set()
        self.frame_name = re.compile(re.escape(Path(source.name).stem or "frame") + r"_\d{6}\.jpg")
        self.frames = 0

    def name(self, frame: Frame) -> str:
        source = Path(frame.source)
        return source.name if source.suffix.lower() in IMAGE_EXTS else f"{source.stem or 'frame'}_{frame.index:06d}.jpg"

    def claims(self, path: Path) -> bool:
        """The folder itself, or a file in it of a name this run will write."""
        if same_file(path, self.path):
            return True
        return same_file(path.parent, self.path) and (path.name in self.photo_names or bool(self.frame_name.fullmatch(path.name)))

    def targets(self) -> list[Path]:
        return [self.path / name for name in sorted(self.photo_names)]

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        if not self.frames:  # made on the first frame, as a video is opened: a run that shows nothing leaves nothing
            try:
                self.path.mkdir(exist_ok=True)
            except OSError as err:
                raise SinkError(f"cannot make the folder {self.path}: {err.strerror}") from None
        save_image(self.path / self.name(frame), annotated)
        self.frames += 1

    def close(self) -> None:
        pass


def output_sink(path: str, source: Source) -> VideoSink | ImageSink | FolderSink:
    """The sink ``--output PATH`` asks for: a video by its type, an image for a single photo, else a folder."""
    out = Path(path)
    suffix = out.suffix.lower()
    if out.is_dir() or not suffix:
        return FolderSink(path, source)
    if suffix in FOURCC:
        return VideoSink(path, fps=source.fps or 15.0)
    if suffix in IMAGE_EXTS:
        if not (source.stills and source.length == 1):
            raise SinkError(f"an image ({suffix}) holds one picture: give --output a folder, or a video ({', '.join(FOURCC)})")
        return ImageSink(path)
    raise SinkError(f"unsupported output type {suffix!r}: a video ({', '.join(FOURCC)}), an image "
                    f"({', '.join(sorted(IMAGE_EXTS))}) or a folder")


def check_outputs(source: Source, sinks: list) -> None:
    """Refuse, before anything is opened, an output that would write over an input or over another output."""
    for sink in sinks:
        for path in source.inputs:
            if sink.claims(path):
                raise SinkError(f"{sink.option} {sink.path} would write over the source ({path}): give another name")
    for a, b in permutations(sinks, 2):
        for target in a.targets():
            if b.claims(target):
                raise SinkError(f"{a.option} and {b.option} would both write {target}: give them different names")
