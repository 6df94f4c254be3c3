"""One frame's way from a source to its sinks, the same for the command line and every camera of the service.

``FrameLoop`` decides once whether a source is photos (each judged on its own)
or video (tracked, a verdict per person), draws the annotations, hands every
sink the frame and, as each person leaves view, their one record (``Person``).
The command line's ``run`` and the service's camera workers differ only in how
they pace frames and which sinks they hold, so a change to judging or drawing
reaches both.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import numpy as np

from detector.draw import BoxAnnotator, HudAnnotator, LabelAnnotator, annotate
from detector.people import PeopleLedger, Person
from detector.pipeline import Pipeline, analyse_frame
from detector.types import Frame
from detector.video import VideoAnalyzer


class Sink(Protocol):
    """Where judged frames go: a file, a window, the service's stream. ``people`` is optional."""

    def write(self, frame: Frame, annotated: np.ndarray) -> None: ...

    def close(self) -> None: ...


class FrameLoop:
    """Judge, draw and hand out each frame of one source; one per camera, sharing the loaded ``pipeline``."""

    def __init__(self, pipeline: Pipeline, stills: bool, fps: float | None, sinks: list,
                 camera: str = "", keep_crops: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.pipeline, self.sinks, self.clock = pipeline, sinks, clock
        self.fps = fps
        self.analyzer = None if stills else VideoAnalyzer(pipeline, fps=fps)
        self.ledger = PeopleLedger(camera, keep_crops=keep_crops)
        self.counted: Counter = Counter()
        """Every person handed over so far, by verdict: what the command line's summary and the service count."""
        self._confirmed: set[int] = set()
        """Tracks confirmed as faces while in view: a box shown in a stream's first frames that no later frame
        confirms is no person."""
        self.hud = HudAnnotator()
        self.annotators = [BoxAnnotator(), LabelAnnotator(), self.hud]

    @property
    def stills(self) -> bool:
        return self.analyzer is None

    def step(self, frame: Frame) -> np.ndarray:
        """Judge ``frame`` (its ``faces`` are filled in), write it to every sink, hand over who left; the drawing."""
        frame.faces = analyse_frame(self.pipeline, frame.image, self.analyzer)
        alive = None if self.analyzer is None else {t.id for t in self.analyzer.tracker.tracks}
        if self.analyzer is not None:
            self._confirmed |= self.analyzer.confirmed()
        left = self.ledger.observe(frame.faces, alive, self.clock(), frame.image)
        annotated = annotate(frame.image, frame.faces, self.annotators)
        for sink in self.sinks:  # every sink gets the frame before a stop is obeyed
            sink.write(frame, annotated)
        self.hand_over(left)
        return annotated

    def restart(self) -> None:
        """The source starts over (a looped file, a reconnected camera): everyone in view has left,
        and no old track continues into the new frames."""
        self.hand_over(self.ledger.finish())
        if self.analyzer is not None:
            self.analyzer = VideoAnalyzer(self.pipeline, fps=self.fps)
            self._confirmed.clear()  # the new tracker numbers its tracks afresh

    def hand_over(self, people: list[Person]) -> None:
        """Give the sinks the people who left, each counted once; on video, only tracks confirmed as faces."""
        if self.analyzer is not None:
            people, ended = [p for p in people if p.track in self._confirmed], {p.track for p in people}
            self._confirmed -= ended
        if not people:
            return
        self.counted.update(p.verdict for p in people)
        for sink in self.sinks:
            take = getattr(sink, "people", None)
            if take is not None:
                take(people)

    def people(self) -> Counter:
        """Each person handed over so far, once, by settled verdict (``checking`` for the never clearly seen)."""
        return Counter(self.counted)
