"""The capture loop: frames from a source, through the pipeline, into sinks."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm

from detector.draw import BoxAnnotator, HudAnnotator, LabelAnnotator, annotate
from detector.pipeline import Pipeline, VideoAnalyzer, analyse_frame
from detector.sources import Source
from detector.types import LABELS


@dataclass
class Summary:
    """What a run saw, printed at its end."""

    frames: int = 0
    faces: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def compliance(self) -> float | None:
        total = sum(self.faces.values())
        return self.faces["mask"] / total if total else None

    def add(self, frame, seconds: float) -> None:
        """Count one processed frame and its faces."""
        self.frames += 1
        self.faces.update(f.label for f in frame.faces)
        self.seconds = seconds

    def lines(self) -> list[str]:
        total = sum(self.faces.values())
        per = ", ".join(f"{lab} {self.faces.get(lab, 0)}" for lab in LABELS)
        comp = "n/a" if self.compliance is None else f"{self.compliance:.1%}"
        return [
            f"frames: {self.frames}{' (stopped early)' if self.interrupted else ''}",
            f"faces: {total} ({per})",
            f"compliance (faces in mask): {comp}",
            f"average FPS: {self.fps:.1f}",
        ]


@contextmanager
def stop_on_first_ctrl_c(summary: Summary) -> Iterator[None]:
    """The first Ctrl-C asks the loop to stop after the frame in hand; a second one interrupts.

    An interrupt in the middle of a frame would leave it in one output and not
    the other (the video a frame ahead of the JSON). Only the main thread can
    own signal handlers; elsewhere Ctrl-C keeps its default behaviour.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if summary.interrupted:
            raise KeyboardInterrupt
        summary.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(source: Source, pipeline: Pipeline, sinks: list, progress: bool = True) -> Summary:
    """Process every frame of ``source``; sinks are always closed, even on Ctrl-C.

    A folder is a set of unrelated photos: each is judged on its own (no
    tracking, border retry for tight crops). A video or a live source is
    tracked so that labels are smoothed over time.
    """
    summary = Summary()
    analyzer = None if source.stills else VideoAnalyzer(pipeline)
    hud = HudAnnotator()
    annotators = [BoxAnnotator(), LabelAnnotator(), hud]
    bar = tqdm(total=source.length, unit="frame", disable=not progress or source.live, leave=False)
    start = time.perf_counter()
    try:
        with stop_on_first_ctrl_c(summary):
            for frame in source:
                frame.faces = analyse_frame(pipeline, frame.image, analyzer)
                summary.add(frame, time.perf_counter() - start)
                hud.fps = summary.fps
                annotated = annotate(frame.image, frame.faces, annotators)
                for sink in sinks:  # every sink gets the frame before a Ctrl-C is obeyed
                    sink.write(frame, annotated)
                bar.update(1)
                if summary.interrupted or any(getattr(s, "quit_requested", False) for s in sinks):
                    break
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once, still closing the sinks
        summary.interrupted = True
    finally:
        bar.close()
        for sink in sinks:
            sink.close()
    summary.seconds = time.perf_counter() - start
    return summary
