"""The live window: the annotated frames on screen, ``q`` or Esc to stop.

A machine without a display (a server, a container, CI) still runs: the
command line says so in one line and carries on headless.
"""

from __future__ import annotations

import os
import sys
import time

import cv2
import numpy as np

from detector.types import Frame


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
