"""Live sources (cameras, stream URLs): a reader thread, reconnection with backoff, and a status to report.

A live capture is read continuously on its own thread, keeping only the newest
frame, so a slow pipeline shows what the camera sees now rather than a growing
backlog. The thread owns the capture: it opens, reads and releases it, and the
consumer stops it and joins it. A capture left inside ``cap.read()`` while the
interpreter shuts down aborts the whole process ("FATAL: exception not
rethrown"), so every read is bounded by a timeout and every stop waits for the
thread to let go of the capture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger("detector.sources")

READ_TIMEOUT_MS = 5000
"""Longest a stream read or open may block; a stalled stream then counts as lost and is reopened."""
JOIN_SECONDS = READ_TIMEOUT_MS / 1000 + 2
"""How long ``stop`` waits for the reader to leave a read in progress and release the capture."""


def open_capture(spec: str | int) -> cv2.VideoCapture:
    """A capture for a camera index or a stream URL, streams with bounded open and read times."""
    if isinstance(spec, int):
        return cv2.VideoCapture(spec)
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, READ_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
    return cv2.VideoCapture(spec, cv2.CAP_ANY, timeouts)


@dataclass
class LiveStatus:
    """What a live source is doing now, for ``/stats`` and ``/health``: read by other threads, written by its reader."""

    state: str = "starting"
    """``starting``, ``running``, ``reconnecting`` (between tries) or ``stopped`` (gave up, or was stopped)."""
    attempt: int = 0
    """The reconnection try under way or next (1-based); 0 while running."""
    attempts: int = 0
    """Tries allowed before the reader gives up."""
    retry_at: float | None = None
    """``time.monotonic()`` of the next try while reconnecting."""
    reconnects: int = 0
    """Times the source came back after a loss."""

    def as_dict(self) -> dict:
        """The status as JSON: the next retry in seconds from now, not a clock reading."""
        retry = None if self.retry_at is None else round(max(0.0, self.retry_at - time.monotonic()), 1)
        return {"state": self.state, "attempt": self.attempt, "attempts": self.attempts, "retry_in_s": retry,
                "reconnects": self.reconnects}


class LatestFrameReader(threading.Thread):
    """Reads a live capture continuously, keeping only the newest frame; reopens it with backoff when it drops."""

    def __init__(self, opener: Callable[[], cv2.VideoCapture], name: str, delays: tuple[float, ...],
                 status: LiveStatus | None = None) -> None:
        super().__init__(name=f"reader {name}")  # not a daemon: the process waits for it to release the capture
        self.opener, self.source_name, self.delays = opener, name, delays
        self.status = status or LiveStatus()
        self.status.attempts = len(delays)
        self._frame: np.ndarray | None = None
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self.gave_up = False

    def run(self) -> None:
        cap = self.opener()
        try:
            while not self._stopped.is_set():
                ok, image = cap.read()
                if ok:
                    self._offer(image)
                    continue
                cap.release()
                cap = self._reopen()
                if cap is None:
                    break
        finally:
            if cap is not None:
                cap.release()  # here, in the thread that reads it
            self.status.state, self.status.retry_at = "stopped", None
            with self._cond:
                self.gave_up = True
                self._cond.notify_all()

    def _offer(self, image: np.ndarray) -> None:
        if self.status.state != "running":
            self.status.state, self.status.attempt, self.status.retry_at = "running", 0, None
        with self._cond:
            self._frame = image
            self._cond.notify_all()

    def _reopen(self) -> cv2.VideoCapture | None:
        for attempt, delay in enumerate(self.delays, 1):
            log.warning("%s lost; reopening in %.1f s (try %d of %d)", self.source_name, delay, attempt, len(self.delays))
            self.status.state, self.status.attempt = "reconnecting", attempt
            self.status.retry_at = time.monotonic() + delay
            if self._stopped.wait(delay):
                return None
            cap = self.opener()
            if cap.isOpened():
                self.status.reconnects += 1
                log.warning("%s reopened", self.source_name)
                return cap
            cap.release()
        log.error("%s did not come back after %d tries; stopping", self.source_name, len(self.delays))
        return None

    def latest(self, timeout: float = 0.25) -> np.ndarray | None:
        """The newest frame not yet taken, waiting up to ``timeout`` seconds."""
        with self._cond:
            if self._frame is None and not self.gave_up:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            return frame

    def stop(self, timeout: float = JOIN_SECONDS) -> None:
        """Ask the reader to stop and wait (bounded) until it has released the capture."""
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
            if self.is_alive():
                log.warning("%s: the reader is still inside a read after %.0f s", self.source_name, timeout)
