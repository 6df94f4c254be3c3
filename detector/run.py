"""The capture loop: frames from a source, through the pipeline, into sinks.

A run is stopped the way a person or a service manager stops it: Ctrl-C
(SIGINT), SIGTERM or SIGHUP. The first finishes the frame in hand, so that
every output holds the same frames, and every sink is finalized; a second
stops at once, still closing the sinks. The exit status is 128 + the signal's
number (130, 143, 129), as a shell reports a process ended by it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm

from detector.loop import FrameLoop
from detector.pipeline import Pipeline
from detector.sinks import OutputClosed
from detector.sources import Source
from detector.types import LABELS

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stop(KeyboardInterrupt):
    """A stop signal that must end what is under way now (model loading, or a second signal in the loop)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum


@contextmanager
def signals_handled(handler: Callable[[int, object], None]) -> Iterator[None]:
    """``handler`` for SIGINT, SIGTERM and SIGHUP inside the block, the previous handlers after it.
    Only the main thread may own signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def frames_of(source: Source) -> Iterator[Iterator]:
    """The source's frames, closed on the way out: a live source's reader is stopped and joined
    before the sinks are finalized, not whenever the iterator happens to be collected."""
    frames = iter(source)
    try:
        yield frames
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


def raise_stop(signum: int, frame: object) -> None:
    """The handler outside the frame loop: a stop signal ends the work under way (see ``Stop``)."""
    raise Stop(signum)


@dataclass
class Summary:
    """What a run saw, printed at its end."""

    frames: int = 0
    faces: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    signal: int | None = None
    """The stop signal that ended the run early, if one did."""
    output_closed: bool = False
    """Standard output's reader went away (``| head``): the run ended quietly."""
    unreadable: int = 0
    unit: str = "frames"
    people: Counter = field(default_factory=Counter)
    """Each person once, by their settled verdict (a track on video, a face on a photo); ``checking``:
    never seen clearly."""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def compliance(self) -> float | None:
        total = sum(self.faces.values())
        return self.faces["mask"] / total if total else None

    @property
    def interrupted(self) -> bool:
        """Whether a stop signal ended the run early (a window closed with q is a normal end)."""
        return self.signal is not None

    @property
    def status(self) -> int:
        """The exit status a stop signal asks for, 0 otherwise."""
        return 128 + self.signal if self.signal else 0

    def add(self, frame, seconds: float, stills: bool = False) -> None:
        """Count one processed frame and its faces (on a photo, each face is a person too)."""
        self.frames += 1
        self.faces.update(f.label for f in frame.faces)
        if stills:
            self.people.update(f.label if f.settled else "checking" for f in frame.faces)
        self.seconds = seconds

    def lines(self) -> list[str]:
        total = sum(self.faces.values())
        per = ", ".join(f"{lab} {self.faces.get(lab, 0)}" for lab in LABELS)
        comp = "n/a" if self.compliance is None else f"{self.compliance:.1%}"
        people = sum(self.people[lab] for lab in LABELS)
        unclear = f", {self.people['checking']} never seen clearly" if self.people["checking"] else ""
        return [
            f"frames: {self.frames}{' (stopped early)' if self.interrupted else ''}",
            f"people: {people} ({', '.join(f'{lab} {self.people[lab]}' for lab in LABELS)}){unclear}",
            f"faces: {total} ({per})",
            f"compliance (faces in mask): {comp}",
            f"average FPS: {self.fps:.1f}",
        ]


def run(source: Source, pipeline: Pipeline, sinks: list, progress: bool = True) -> Summary:
    """Process every frame of ``source``; sinks are always closed, even when stopped.

    A folder is a set of unrelated photos: each is judged on its own (no
    tracking, border retry for tight crops). A video or a live source is
    tracked so that labels are smoothed over time.
    """
    summary = Summary(unit=source.unit)
    loop = FrameLoop(pipeline, source.stills, source.fps, sinks)
    bar = tqdm(total=source.length, unit="frame", disable=not progress or source.live, leave=False)

    def first_stop(signum: int, frame: object) -> None:
        if summary.interrupted:  # a second signal: stop now
            raise Stop(signum)
        summary.signal = signum
        source.stop()  # a live source waiting for a frame ends too

    start = time.perf_counter()
    try:
        with signals_handled(first_stop), frames_of(source) as frames:
            for frame in frames:
                loop.hud.fps = summary.fps
                loop.step(frame)
                summary.add(frame, time.perf_counter() - start, stills=loop.stills)
                bar.update(1)
                if summary.interrupted or any(getattr(s, "quit_requested", False) for s in sinks):
                    break
    except OutputClosed:
        summary.output_closed = True
    except Stop as stop:  # a second signal: stop at once, still closing the sinks
        summary.signal = summary.signal or stop.signum
    finally:
        bar.close()
        loop.hand_over(loop.ledger.finish())  # those still in view at the end are people too
        close_all(sinks)
    summary.seconds = time.perf_counter() - start
    summary.unreadable = source.unreadable
    if not loop.stills:
        summary.people = loop.people()
    return summary


def close_all(sinks: list) -> None:
    """Close every sink, even when one fails; the first failure is raised once all are closed."""
    failure: Exception | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # noqa: BLE001 - re-raised below, after the other sinks are finished
            failure = failure or err
    if failure is not None:
        raise failure
