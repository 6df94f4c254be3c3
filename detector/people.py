"""People, each counted once: a track's frames folded into one record when it leaves view.

A camera sees a person in many frames; a site asks how many *people* came in
without a mask, not how many frames showed one. The ledger follows every shown
track (``VideoAnalyzer`` shows a track once it is confirmed) and, when the track
is gone, gives one ``Person``: when they were first and last seen, their settled
verdict, the share of frames per label and their best view. On photos each face
is a person of its own, gone as soon as it is seen.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from detector.types import LABELS, Face

UNSETTLED = "checking"
"""The verdict of a person never seen clearly enough to judge (no good-quality frame)."""


@dataclass
class Person:
    """One person's visit, as the history, the API and the events give it."""

    track: int
    first_seen: float
    """Wall-clock seconds (Unix time) of the first frame they were shown in."""
    last_seen: float
    verdict: str
    """Their settled verdict (one of ``LABELS``), or ``checking`` when no frame showed them clearly."""
    score: float
    """The classifier's smoothed confidence in ``verdict`` on their last frame."""
    frames: Counter = field(default_factory=Counter)
    """Frames shown per label (the label drawn on each frame, settled or not)."""
    best_quality: float = 0.0
    camera: str = ""
    best_crop: np.ndarray | None = field(default=None, repr=False)
    """The face cut from their best frame (BGR), for a snapshot; None unless the ledger keeps crops."""

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.frames.values())
        return {lab: round(self.frames[lab] / total, 4) if total else 0.0 for lab in LABELS}

    def to_json(self) -> dict:
        return {"camera": self.camera, "track": self.track, "first_seen": round(self.first_seen, 3),
                "last_seen": round(self.last_seen, 3), "verdict": self.verdict, "score": round(self.score, 4),
                "shares": self.shares, "frames": sum(self.frames.values()),
                "best_quality": round(self.best_quality, 3)}


class PeopleLedger:
    """Folds each frame's tracked faces into ``Person`` records and hands them over as tracks end.

    ``keep_crops`` keeps a copy of each person's best-quality face (for snapshots); off, nothing
    of a face's pixels outlives its frame.
    """

    def __init__(self, camera: str = "", keep_crops: bool = False) -> None:
        self.camera = camera
        self.keep_crops = keep_crops
        self._open: dict[int, Person] = {}

    @property
    def in_view(self) -> list[Person]:
        return list(self._open.values())

    def person(self, track: int) -> Person | None:
        """The person a track in view is, so far."""
        return self._open.get(track)

    def observe(self, faces: list[Face], alive: set[int] | None, now: float,
                image: np.ndarray | None = None) -> list[Person]:
        """Add one frame; returns the people whose track ended (``alive``: the tracker's track ids now;
        None on photos, where every face is a person who leaves at once)."""
        untracked = []
        for face in faces:
            if face.track is None:
                untracked.append(self._person(-1, now))
                self._add(untracked[-1], face, image)
            else:
                self._add(self._open.setdefault(face.track, self._person(face.track, now)), face, image)
                self._open[face.track].last_seen = now
        if alive is None:
            ended, self._open = list(self._open.values()), {}
            return untracked + ended
        ended = [p for track, p in self._open.items() if track not in alive]
        self._open = {track: p for track, p in self._open.items() if track in alive}
        return untracked + ended

    def finish(self) -> list[Person]:
        """Everyone still in view, as the source ends (or loops back)."""
        ended, self._open = list(self._open.values()), {}
        return ended

    def _person(self, track: int, now: float) -> Person:
        return Person(track=track, first_seen=now, last_seen=now, verdict=UNSETTLED, score=0.0, camera=self.camera)

    def _add(self, person: Person, face: Face, image: np.ndarray | None) -> None:
        person.frames[face.label] += 1
        person.verdict = face.label if face.settled else UNSETTLED
        person.score = float(face.label_score)
        quality = 1.0 if face.quality is None else float(face.quality)
        if quality >= person.best_quality:
            person.best_quality = quality
            if self.keep_crops and image is not None:
                person.best_crop = face_crop(image, face.box)


def face_crop(image: np.ndarray, box: tuple[float, float, float, float], margin: float = 0.25) -> np.ndarray:
    """The face with a margin around it, clipped to the image (a copy: the frame buffer is reused)."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    h, w = image.shape[:2]
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(x2 + mx)), min(h, int(y2 + my))
    return image[top:bottom, left:right].copy()


def tally(people: list[Person]) -> Counter:
    """People per verdict (``checking`` for the unclear)."""
    return Counter(p.verdict for p in people)
