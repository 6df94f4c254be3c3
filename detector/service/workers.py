"""The service's background side: one thread that watches the source.

The worker reads the source, runs a ``VideoAnalyzer``, and keeps only the
newest annotated JPEG, the running counts and the source's state (running,
reconnecting with its next try, stopped), which ``/stats`` and ``/health`` tell as
they are, never the last good figures of a source that went away; HTTP clients read those and never
drive the pipeline themselves, so a slow or vanished viewer cannot stall the
stream, and ten viewers cost no more than one. Results reach the event loop
through ``Hub`` (thread -> asyncio fan-out) and Prometheus through ``Metrics``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from detector.draw import BoxAnnotator, HudAnnotator, LabelAnnotator, annotate
from detector.live import LiveStatus
from detector.pipeline import Pipeline, analyse_frame
from detector.sources import Source
from detector.types import LABELS, Face, Frame
from detector.video import VideoAnalyzer

log = logging.getLogger(__name__)

STILL_SECONDS = 1.0
"""How long each photo of an image or folder source stays on screen."""
RETRY_SECONDS = 5.0
"""Pause before reopening a live source that gave up (sources.py already retried with backoff)."""
STALE_SECONDS = 2.0
"""A stream with no frame for this long reports 0 FPS, whatever its last rate was."""
DOWN_STATES = ("reconnecting", "stopped", "no frames")
"""States in which a source shows nothing: ``/health`` names it as down."""


class Metrics:
    """The Prometheus metrics of one app, in their own registry (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.frames = PromCounter("maskdet_frames_processed", "Stream frames run through the pipeline", registry=r)
        self.faces = PromCounter("maskdet_faces", "Faces judged, per label and origin (stream or upload)",
                                 ["label", "origin"], registry=r)
        self.fps = Gauge("maskdet_stream_fps", "Stream frames processed per second, over the last seconds", registry=r)
        self.up = Gauge("maskdet_stream_up", "1 while the stream's source gives frames, 0 while it is down", registry=r)
        self.latency = Histogram("maskdet_frame_latency_seconds", "Pipeline time per stream frame",
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2), registry=r)
        self.uploads = PromCounter("maskdet_uploads", "POST /detect requests, per HTTP status", ["status"], registry=r)
        self.upload_latency = Histogram("maskdet_upload_latency_seconds", "Time to answer a good upload",
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4), registry=r)
        self.changes = PromCounter("maskdet_verdict_changes", "Tracked faces whose label changed", registry=r)
        self.clients = Gauge("maskdet_stream_clients", "Open /stream and /events connections", registry=r)
        for label in LABELS:
            for origin in ("stream", "upload"):
                self.faces.labels(label=label, origin=origin)
        for status in ("200", "400", "408", "413", "415", "503"):
            self.uploads.labels(status=status)


class Hub:
    """Fan-out from the worker thread to async subscribers, each with a small queue.

    A full queue drops its oldest item: a slow client sees fewer frames, it
    never makes the worker wait.
    """

    def __init__(self) -> None:
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()

    def subscribe(self, size: int) -> asyncio.Queue:
        """A queue fed from now on; call from the event loop, then ``unsubscribe``."""
        queue: asyncio.Queue = asyncio.Queue(size)
        with self._lock:
            self._subs.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._subs = {s for s in self._subs if s[1] is not queue}

    def publish(self, item: Any) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, queue in subs:
            with contextlib.suppress(RuntimeError):  # loop already closed (shutting down)
                loop.call_soon_threadsafe(_offer, queue, item)


def _offer(queue: asyncio.Queue, item: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)


class StreamWorker(threading.Thread):
    """Reads ``source`` until stopped; files loop so the page keeps moving.

    It runs the pipeline it is given on its own thread, beside the uploads'
    threads: the pipeline's stages keep no state between calls and onnxruntime
    sessions may be run from several threads, so the stream never waits for an
    upload to finish (``detector.service.uploads``).
    """

    def __init__(self, source: Source, pipeline: Pipeline, metrics: Metrics, jpeg_quality: int = 80) -> None:
        super().__init__(name="stream-worker")
        self.source, self.pipeline, self.metrics = source, pipeline, metrics
        self.jpeg_quality = jpeg_quality
        self.frames = Hub()
        self.events = Hub()
        self.status = source.status or LiveStatus()
        """The connection state, shared with a live source's reader; the worker's own retries show here too."""
        self.jpeg: bytes | None = None
        self.errors = 0
        self._halt = threading.Event()
        self._mutex = threading.Lock()
        self._now: Counter = Counter()
        self._total: Counter = Counter()
        self._recent: deque[dict] = deque(maxlen=20)
        self._times: deque[float] = deque(maxlen=50)
        self._count = 0
        self._labels: dict[int, str] = {}
        self._people: Counter = Counter()
        self._hud = HudAnnotator()
        self._annotators = [BoxAnnotator(), LabelAnnotator(), self._hud]
        metrics.fps.set_function(lambda: round(self.fps, 2))
        metrics.up.set_function(lambda: float(self.state == "running"))

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

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching: the source ends at its next frame boundary and its reader lets go of the capture."""
        self._halt.set()
        self.source.stop()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        analyzer = None if self.source.stills else VideoAnalyzer(self.pipeline, fps=self.source.fps)
        try:
            while not self._halt.is_set():
                self._play_once(analyzer)
        finally:
            self.status.state, self.status.retry_at = "stopped", None

    def _play_once(self, analyzer: VideoAnalyzer | None) -> None:
        """One pass over the source, then, for a live source that gave up or a file that gave nothing, a pause."""
        if not self.source.live:
            self.status.state = "running"
        try:
            shown = self._play(analyzer)
        except Exception:  # a source that breaks mid-read (not merely ends): report, pause, reopen
            log.exception("reading %s failed", self.source.name)
            shown = 0
        if self._halt.is_set():
            return
        if self.source.live or not shown:
            pause = RETRY_SECONDS if self.source.live else 1.0
            self.status.state = "reconnecting" if self.source.live else "no frames"
            self.status.attempt += 1
            self.status.retry_at = time.monotonic() + pause
            self._times.clear()
            with self._mutex:
                self._now = Counter()
            self._halt.wait(pause)
        if analyzer is not None:  # a looped file jumps back: old tracks do not continue
            analyzer.tracker.tracks = []
            self._labels.clear()

    def _play(self, analyzer: VideoAnalyzer | None) -> int:
        """One pass over the source; returns the number of frames shown."""
        pace = STILL_SECONDS if self.source.stills else (0.0 if self.source.live else 1.0 / (self.source.fps or 25.0))
        frames: Iterator[Frame] = iter(self.source)
        shown = 0
        try:
            next_due = time.monotonic()
            for frame in frames:
                try:
                    self._process(frame, analyzer)
                except Exception:  # one bad frame must not end the service's stream
                    self.errors += 1
                    if self.errors in (1, 10) or self.errors % 1000 == 0:  # a broken pipeline must not flood the log
                        log.exception("stream frame %d failed (%d failures so far)", frame.index, self.errors)
                shown += 1
                next_due = max(next_due + pace, time.monotonic())
                if self._halt.wait(max(0.0, next_due - time.monotonic())):
                    break
        finally:
            close = getattr(frames, "close", None)
            if close is not None:  # stops a live source's reader thread
                close()
        return shown

    def _process(self, frame: Frame, analyzer: VideoAnalyzer | None) -> None:
        start = time.perf_counter()
        faces = analyse_frame(self.pipeline, frame.image, analyzer)
        self.metrics.latency.observe(time.perf_counter() - start)
        self.metrics.frames.inc()
        now = Counter(f.label or "unknown" for f in faces)
        for label, n in now.items():
            self.metrics.faces.labels(label=label, origin="stream").inc(n)
        changes = self._changes(frame, faces, analyzer)
        self._times.append(time.monotonic())
        if self.status.state != "running":
            self.status.state, self.status.attempt, self.status.retry_at = "running", 0, None
        self._hud.fps = self.fps
        jpeg = self._encode(annotate(frame.image, faces, self._annotators))
        people = analyzer.people() if analyzer is not None else None
        with self._mutex:
            self._now, self._count = now, self._count + 1
            self._total.update(now)
            if people is not None:
                self._people = people
            self._recent.extend(changes)
            self.jpeg = jpeg
        self.frames.publish(jpeg)
        for event in changes:
            self.events.publish(event)

    def _changes(self, frame: Frame, faces: list[Face], analyzer: VideoAnalyzer | None) -> list[dict]:
        """Verdict changes of tracked faces since the previous frame."""
        if analyzer is None:
            return []
        out = []
        for f in faces:
            if f.track is None or f.label is None or not f.settled:  # a guess before a clear view is no verdict
                continue
            old = self._labels.get(f.track)
            if old is not None and old != f.label:
                out.append({"track": f.track, "old": old, "new": f.label, "time": round(time.time(), 3),
                            "frame": frame.index, "stream_time": round(frame.time, 3)})
            self._labels[f.track] = f.label
        alive = {t.id for t in analyzer.tracker.tracks}
        self._labels = {k: v for k, v in self._labels.items() if k in alive}
        self.metrics.changes.inc(len(out))
        return out

    def _encode(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else (self.jpeg or b"")

    @property
    def frames_done(self) -> int:
        """Frames judged so far (``/health``)."""
        with self._mutex:
            return self._count

    def snapshot(self) -> dict:
        """The counts for ``/stats``: faces in the newest frame and since the start, people, the source's state."""
        with self._mutex:
            now, total, count, recent = dict(self._now), dict(self._total), self._count, list(self._recent)
            people = Counter(self._people)
        return stats_body(self.state, public_name(self.source.name), count, self.fps, now, total, recent,
                          people, self.status.as_dict())


def stats_body(state: str, source: str | None, frames: int, fps: float, now: dict[str, int], total: dict[str, int],
               recent: list[dict], people: Counter | None = None, source_status: dict | None = None) -> dict:
    """The ``/stats`` answer, with or without a stream (one shape, so clients need no special case)."""
    people = people or Counter()
    return {
        "stream": state,
        "source": source,
        "frames": frames,
        "fps": round(fps, 2),
        "now": {lab: now.get(lab, 0) for lab in LABELS},
        "total": {lab: total.get(lab, 0) for lab in LABELS},
        "compliance_now": compliance(now),
        "compliance_total": compliance(total),
        "recent_changes": recent,
        "people": {lab: people[lab] for lab in (*LABELS, "checking")},
        "source_status": source_status,
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
