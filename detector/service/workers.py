"""The service's background side: one thread per camera, each running the shared frame loop.

A worker reads its camera and runs ``detector.loop.FrameLoop`` (the command
line's loop) with one sink, ``detector.service.view.LiveView``; it paces the
frames, keeps the source's state (running, reconnecting with its next try,
stopped), which the routes tell as it is, never the last good figures of a
source that went away, and reopens a camera that fails with backoff without
touching the others. ``stats_body`` sums the cameras for ``/stats``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

from detector.live import LiveStatus
from detector.loop import FrameLoop
from detector.people import UNSETTLED, tally
from detector.pipeline import Pipeline
from detector.service.history import History, people_counts, start_of_today
from detector.service.view import LiveView
from detector.sources import Source
from detector.types import LABELS, Frame

log = logging.getLogger(__name__)

STILL_SECONDS = 1.0
"""How long each photo of an image or folder source stays on screen."""
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
"""Pauses before reopening a source that gave up or broke, growing with each failure in a row (a live
source's reader already retried with its own backoff first)."""
STALE_SECONDS = 2.0
"""A stream with no frame for this long reports 0 FPS, whatever its last rate was."""
DOWN_STATES = ("reconnecting", "stopped", "no frames")
"""States in which a source shows nothing: ``/health`` names it as down."""


class CameraWorker(threading.Thread):
    """Reads one camera until stopped; files loop so the page keeps moving.

    It runs its own frame loop (its own tracker) on the pipeline it is given,
    beside the other cameras and the uploads: the pipeline's stages keep no state
    between calls and onnxruntime sessions may be run from several threads.
    """

    def __init__(self, name: str, source: Source, pipeline: Pipeline, view: LiveView,
                 fps_cap: float | None = None, keep_crops: bool = False) -> None:
        super().__init__(name=f"camera-{name}")
        self.camera, self.source, self.pipeline, self.view = name, source, pipeline, view
        self.fps_cap = fps_cap
        self.keep_crops = keep_crops
        self.status = source.status or LiveStatus()
        """The connection state, shared with a live source's reader; the worker's own retries show here too."""
        self.errors = 0
        self.dropped = 0
        """Frames of a file skipped because the worker was too late for them (a busy machine)."""
        self.loop: FrameLoop | None = None
        self._halt = threading.Event()
        self._times: deque[float] = deque(maxlen=50)
        view.metrics.add_camera(name, lambda: round(self.fps, 2), lambda: float(self.state == "running"))

    @property
    def state(self) -> str:
        """``starting``, ``running``, ``reconnecting``, ``no frames`` (a file that gave none) or ``stopped``."""
        return self.status.state

    @property
    def fps(self) -> float:
        """Frames judged per second lately; 0 once no frame came for ``STALE_SECONDS``."""
        times = list(self._times)
        if len(times) < 2 or time.monotonic() - times[-1] > STALE_SECONDS:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def in_view(self) -> Counter:
        """People in view now, by settled verdict."""
        loop = self.loop
        return tally(loop.ledger.in_view) if loop is not None else Counter()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching: the source ends at its next frame boundary and its reader lets go of the capture."""
        self._halt.set()
        self.source.stop()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        self.loop = FrameLoop(self.pipeline, self.source.stills, self.source.fps, [self.view], camera=self.camera,
                              keep_crops=self.keep_crops)
        self.view.ledger = self.loop.ledger
        failures = 0
        try:
            while not self._halt.is_set():
                shown = self._play_once()
                failures = 0 if shown else failures + 1
                self._pause(shown, failures)
        finally:
            self.loop.restart()  # everyone in view has left: their records are kept
            self.status.state, self.status.retry_at = "stopped", None

    def _play_once(self) -> int:
        """One pass over the source; the number of frames shown (0 where it broke or gave none)."""
        if not self.source.live:
            self.status.state = "running"
        try:
            return self._play()
        except Exception:  # a source that breaks mid-read (not merely ends): report, pause, reopen
            log.exception("camera %s: reading %s failed", self.camera, public_name(self.source.name))
            return 0

    def _pause(self, shown: int, failures: int) -> None:
        """After a pass: a live source that gave up or a file that gave nothing waits, longer each time."""
        if self._halt.is_set():
            return
        if self.source.live or not shown:
            pause = RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1] if failures else RETRY_SECONDS[0]
            self.status.state = "reconnecting" if self.source.live else "no frames"
            self.status.attempt += 1
            self.status.retry_at = time.monotonic() + pause
            self._times.clear()
            with self.view.mutex:
                self.view.now = Counter()
            self._halt.wait(pause)
        self.loop.restart()  # a looped file jumps back, a camera reconnects: old tracks do not continue

    def _play(self) -> int:
        """One pass: a file in real time (judged at most ``fps_cap`` times a second, and a frame the worker is
        too late for dropped, as a camera would drop it, so a slow moment never becomes a lasting lag), a live
        source's newest frames (at most ``fps_cap`` a second), a folder's photos ``STILL_SECONDS`` each."""
        frames: Iterator[Frame] = iter(self.source)
        played = not self.source.live and not self.source.stills
        gap = 1.0 / self.fps_cap if self.fps_cap else 0.0
        late = max(gap, 1.0 / (self.source.fps or 25.0))
        pace = STILL_SECONDS if self.source.stills else gap
        shown, next_time, start = 0, 0.0, None
        try:
            due = time.monotonic()
            for frame in frames:
                if played:
                    if frame.time + 1e-6 < next_time:
                        continue  # a file faster than the cap: judged at the cap
                    start = time.monotonic() - frame.time if start is None else start
                    due = start + frame.time
                    if time.monotonic() - due > late:
                        self.dropped += 1
                        self.view.metrics.dropped_frames.labels(camera=self.camera).inc()
                        continue
                    next_time = max(next_time + gap, frame.time)
                    if self._halt.wait(max(0.0, due - time.monotonic())):
                        break
                self._process(frame)
                shown += 1
                if not played:
                    due = max(due + pace, time.monotonic())
                    if self._halt.wait(max(0.0, due - time.monotonic())):
                        break
        finally:
            close = getattr(frames, "close", None)
            if close is not None:  # stops a live source's reader thread
                close()
        return shown

    def _process(self, frame: Frame) -> None:
        start = time.perf_counter()
        self.loop.hud.fps = self.fps
        try:
            self.loop.step(frame)
        except Exception:  # one bad frame must not end the camera
            self.errors += 1
            if self.errors in (1, 10) or self.errors % 1000 == 0:  # a broken pipeline must not flood the log
                log.exception("camera %s: frame %d failed (%d failures so far)", self.camera, frame.index, self.errors)
            return
        metrics = self.view.metrics
        metrics.latency.labels(camera=self.camera).observe(time.perf_counter() - start)
        metrics.frames.labels(camera=self.camera).inc()
        self._times.append(time.monotonic())
        if self.status.state != "running":
            self.status.state, self.status.attempt, self.status.retry_at = "running", 0, None

    @property
    def frames_done(self) -> int:
        with self.view.mutex:
            return self.view.count

    def summary(self, history: History, today: float | None = None) -> dict:
        """This camera for ``/api/cameras``: state, rate, people in view and today's people by verdict."""
        today = start_of_today() if today is None else today
        return {"name": self.camera, "status": camera_status(self.state), "state": self.state,
                "source": public_name(self.source.name), "fps": round(self.fps, 2), "frames": self.frames_done,
                "in_view": counts_of(self.in_view()), "today": people_counts(history.counts(self.camera, today)),
                "source_status": self.status.as_dict()}

    def faces(self) -> tuple[Counter, Counter, list[dict]]:
        """Faces in the newest frame, since the start, and the latest verdict changes."""
        with self.view.mutex:
            return Counter(self.view.now), Counter(self.view.total), list(self.view.recent)


def camera_status(state: str) -> str:
    """``running``, ``reconnecting`` (down, trying again) or ``stopped``, as ``/api/cameras`` tells it."""
    if state in ("running", "starting", "stopped"):
        return "stopped" if state == "stopped" else "running"
    return "reconnecting"


def counts_of(counter: Counter) -> dict:
    return {lab: counter.get(lab, 0) for lab in (*LABELS, UNSETTLED)}


def stats_body(workers: list[CameraWorker], history: History) -> dict:
    """The ``/stats`` answer over every camera, with or without one (one shape, so clients need no special case).

    ``now``/``total`` and ``compliance_now``/``compliance_total`` count faces (face-frames) as they always
    did; ``people`` and ``compliance`` count each person once: today's people (history) and those in view.
    """
    now, total, recent = Counter(), Counter(), []
    for worker in workers:
        n, t, r = worker.faces()
        now.update(n)
        total.update(t)
        recent += r
    people = history.counts(since=start_of_today())
    for worker in workers:
        people.update(worker.in_view())
    first = workers[0] if workers else None
    return {
        "stream": first.state if first else "off",
        "source": public_name(first.source.name) if first else None,
        "frames": sum(w.frames_done for w in workers),
        "fps": round(sum(w.fps for w in workers), 2),
        "now": {lab: now.get(lab, 0) for lab in LABELS},
        "total": {lab: total.get(lab, 0) for lab in LABELS},
        "compliance_now": compliance(now),
        "compliance_total": compliance(total),
        "recent_changes": sorted(recent, key=lambda e: e["time"])[-20:],
        **people_counts(people),
        "source_status": first.status.as_dict() if first else None,
        "cameras": [w.camera for w in workers],
    }


def compliance(counts: dict[str, int]) -> float | None:
    """Faces in a mask over all faces; None when there were no faces."""
    faces = sum(counts.get(lab, 0) for lab in LABELS)
    return round(counts.get("mask", 0) / faces, 4) if faces else None


def public_name(name: str) -> str:
    """A source name fit to show to clients: camera URLs often carry ``user:password@``."""
    parts = urlsplit(name)
    if parts.scheme and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))
    return name
