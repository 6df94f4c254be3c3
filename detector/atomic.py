"""Writing a file so that a crash never leaves half of it where a good one stood.

Each output is written under a temporary name in its own folder and renamed
over its target only once it is complete (a rename within one file system is
atomic): until then the user's old file, if any, is untouched, and a run killed
outright leaves a hidden ``.NAME.XXXX.part.EXT`` beside it, never a truncated
``NAME.EXT``. A target that is not a regular file (``/dev/null``, a named pipe,
``/dev/stdout``) is written in place: renaming over it would replace the device.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same after resolving links, or one inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def writes_in_place(target: Path) -> bool:
    """A device, pipe or socket: written directly, since there is nothing to rename over."""
    return target.exists() and not target.is_file() and not target.is_dir()


class AtomicFile:
    """One output file: write to ``path``, then ``commit`` renames it over ``target`` (or ``discard`` drops it).

    The temporary name keeps the target's extension, since OpenCV picks the
    image or video format from it.
    """

    def __init__(self, target: Path) -> None:
        self.target = target
        self.in_place = writes_in_place(target)
        if self.in_place:
            self.path = target
        else:
            token = secrets.token_hex(4)
            self.path = target.with_name(f".{target.stem}.{token}.part{target.suffix}")
        self.done = False

    def commit(self) -> None:
        """Flush the finished file to disk and put it in place of the target."""
        if self.done or self.in_place:
            self.done = True
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.path, self.target)
        self.done = True

    def discard(self) -> None:
        """Remove the unfinished file (ours, never the target's old contents)."""
        if not self.done and not self.in_place:
            self.path.unlink(missing_ok=True)
        self.done = True


def write_bytes(target: Path, data: bytes) -> None:
    """``data`` as the whole of ``target``, atomically (an image file, say)."""
    out = AtomicFile(target)
    try:
        with open(out.path, "wb") as f:
            f.write(data)
        out.commit()
    except BaseException:
        out.discard()
        raise
