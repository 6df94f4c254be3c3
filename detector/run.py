"""The capture loop: frames from a source, through the pipeline, into sinks."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from detector.draw import BoxAnnotator, HudAnnotator, LabelAnnotator, annotate
from detector.pipeline import Pipeline, VideoAnalyzer
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


def run(source: Source, pipeline: Pipeline, sinks: list, progress: bool = True) -> Summary:
    """Process every frame of ``source``; sinks are always closed, even on Ctrl-C.

    A folder is a set of unrelated photos: each is judged on its own (no
    tracking, border retry for tight crops). A video or a live source is
    tracked so that labels are smoothed over time.
    """
    summary = Summary()
    stills = source.length is not None and source.fps is None
    analyzer = None if stills else VideoAnalyzer(pipeline)
    hud = HudAnnotator()
    annotators = [BoxAnnotator(), LabelAnnotator(), hud]
    bar = tqdm(total=source.length, unit="frame", disable=not progress or source.live, leave=False)
    start = time.perf_counter()
    try:
        for frame in source:
            frame.faces = pipeline.analyse(frame.image, still=True) if analyzer is None else analyzer(frame.image)
            summary.frames += 1
            summary.faces.update(f.label for f in frame.faces)
            summary.seconds = time.perf_counter() - start
            hud.fps = summary.fps
            annotated = annotate(frame.image, frame.faces, annotators)
            for sink in sinks:
                sink.write(frame, annotated)
            bar.update(1)
            if any(getattr(s, "quit_requested", False) for s in sinks):
                break
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        for sink in sinks:
            sink.close()
    summary.seconds = time.perf_counter() - start
    return summary
