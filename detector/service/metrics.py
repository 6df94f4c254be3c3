"""The service's Prometheus metrics, every stream series labelled by ``camera``.

One registry per app (tests build many apps in one process). A site's
dashboards sum over ``camera`` for the whole site or pick one door.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

from detector.people import UNSETTLED
from detector.types import LABELS


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.frames = PromCounter("maskdet_frames_processed", "Frames run through the pipeline", ["camera"], registry=r)
        self.dropped_frames = PromCounter("maskdet_frames_dropped", "Frames of a file left unjudged: the camera's "
                                          "worker was too late for them", ["camera"], registry=r)
        self.faces = PromCounter("maskdet_faces", "Faces judged (face-frames), per label and origin (stream or upload)",
                                 ["camera", "label", "origin"], registry=r)
        self.people = PromCounter("maskdet_people", "People who left view, per settled verdict", ["camera", "label"],
                                  registry=r)
        self.fps = Gauge("maskdet_stream_fps", "Frames processed per second, over the last seconds", ["camera"],
                         registry=r)
        self.up = Gauge("maskdet_stream_up", "1 while the camera's source gives frames, 0 while it is down", ["camera"],
                        registry=r)
        self.latency = Histogram("maskdet_frame_latency_seconds", "Pipeline time per frame", ["camera"],
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2), registry=r)
        self.uploads = PromCounter("maskdet_uploads", "POST /detect requests, per HTTP status", ["status"], registry=r)
        self.upload_latency = Histogram("maskdet_upload_latency_seconds", "Time to answer a good upload",
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4), registry=r)
        self.changes = PromCounter("maskdet_verdict_changes", "Tracked people whose settled verdict changed",
                                   ["camera"], registry=r)
        self.clients = Gauge("maskdet_stream_clients", "Open stream and event connections", registry=r)
        self.dropped = PromCounter("maskdet_messages_dropped", "Outgoing messages dropped (queue full while the "
                                   "broker or webhook was away)", ["output"], registry=r)
        for label in LABELS:
            self.faces.labels(camera="", label=label, origin="upload")
        for status in ("200", "400", "408", "413", "415", "503"):
            self.uploads.labels(status=status)

    def add_camera(self, camera: str, fps, up) -> None:
        """Start every series of a camera at zero, with its live gauges read from the worker."""
        self.frames.labels(camera=camera)
        self.dropped_frames.labels(camera=camera)
        self.changes.labels(camera=camera)
        for label in LABELS:
            self.faces.labels(camera=camera, label=label, origin="stream")
        for label in (*LABELS, UNSETTLED):
            self.people.labels(camera=camera, label=label)
        self.fps.labels(camera=camera).set_function(fps)
        self.up.labels(camera=camera).set_function(up)
