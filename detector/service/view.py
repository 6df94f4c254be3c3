"""A camera's frame-loop sink in the service: what viewers, the history and the outputs get of each frame.

The worker's thread writes here; the routes read the newest JPEG and counts under
one lock, and the hubs carry frames and verdict events to the event loop, so
HTTP clients never drive the pipeline. People who leave view go to the history,
the metrics and the site's outputs (MQTT, a webhook).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import cv2
import numpy as np

from detector.people import PeopleLedger, Person
from detector.service.history import History
from detector.service.hub import Hub
from detector.service.metrics import Metrics
from detector.types import Face, Frame


class LiveView:
    """The frame loop's sink in the service: the newest JPEG, counts, verdict changes, people who left."""

    def __init__(self, camera: str, metrics: Metrics, history: History, outputs: list,
                 jpeg_quality: int = 80, blur: bool = False) -> None:
        self.camera, self.metrics, self.history, self.outputs = camera, metrics, history, outputs
        self.jpeg_quality, self.blur = jpeg_quality, blur
        self.frames, self.events = Hub(), Hub()
        self.jpeg: bytes | None = None
        self.mutex = threading.Lock()
        self.now: Counter = Counter()
        self.total: Counter = Counter()
        self.count = 0
        self.recent: deque[dict] = deque(maxlen=20)
        self.labels: dict[int, str] = {}
        self.ledger: PeopleLedger | None = None
        """The frame loop's people in view (their best frame so far goes with a verdict's snapshot)."""

    def write(self, frame: Frame, annotated: np.ndarray) -> None:
        now = Counter(f.label or "unknown" for f in frame.faces)
        for label, n in now.items():
            self.metrics.faces.labels(camera=self.camera, label=label, origin="stream").inc(n)
        changes = self._changes(frame)
        jpeg = self._encode(blur_faces(annotated, frame.faces) if self.blur else annotated)
        with self.mutex:
            self.now, self.count = now, self.count + 1
            self.total.update(now)
            self.recent.extend(changes)
            self.jpeg = jpeg
        self.frames.publish(jpeg)
        for event in changes:
            self.events.publish(event)
            person = self.ledger.person(event["track"]) if self.ledger is not None else None
            for output in self.outputs:
                output.verdict(event, person)

    def people(self, people: list[Person]) -> None:
        """People who left view: one record each, to the history, the metrics and the outputs."""
        self.history.add(people)
        for person in people:
            self.metrics.people.labels(camera=self.camera, label=person.verdict).inc()
            for output in self.outputs:
                output.person(person)

    def close(self) -> None:
        return None

    def _changes(self, frame: Frame) -> list[dict]:
        """Settled verdicts: a person's first, and each change after it."""
        out = []
        for f in frame.faces:
            if f.track is None or f.label is None or not f.settled:  # a guess before a clear view is no verdict
                continue
            old = self.labels.get(f.track)
            if old != f.label:
                out.append({"camera": self.camera, "track": f.track, "old": old, "new": f.label,
                            "score": round(float(f.label_score), 4), "time": round(time.time(), 3),
                            "frame": frame.index, "stream_time": round(frame.time, 3)})
            self.labels[f.track] = f.label
        # forget a person once they have left, not when one frame misses them (their first verdict is said once)
        alive = {p.track for p in self.ledger.in_view} if self.ledger is not None else {f.track for f in frame.faces}
        self.labels = {k: v for k, v in self.labels.items() if k in alive}
        self.metrics.changes.labels(camera=self.camera).inc(sum(e["old"] is not None for e in out))
        return out

    def _encode(self, image: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return buf.tobytes() if ok else (self.jpeg or b"")


def blur_faces(image: np.ndarray, faces: list[Face]) -> np.ndarray:
    """Every face box blurred past recognition (the box and label drawn around it stay readable)."""
    out = image.copy()
    h, w = out.shape[:2]
    for f in faces:
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        if x2 - x1 > 1 and y2 - y1 > 1:
            k = max(3, (min(x2 - x1, y2 - y1) // 3) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(out[y1:y2, x1:x2], (k, k), 0)
    return out
