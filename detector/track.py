"""Following faces across frames, and one verdict per person from the evidence of every frame.

A label that flickers between frames is useless at a door: each face is
matched to a track by box overlap, and the track keeps a moving average of
the classifier's probabilities, each frame weighted by how well it showed the
face (``detector.quality``): a profile, a blurred frame or a hand in front
barely moves it. A track is ``settled`` once it has had one clear view; until
then its label is the best guess so far. Once settled, the label changes only
on a clear frame, and only when another class leads the average by a margin
(hysteresis), so a mask pulled down comes through within a few clear frames
and noise does not. A track that leaves is dropped; who it was is kept by ``detector.people``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detector.quality import GOOD_QUALITY
from detector.types import LABELS, Face


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda r: (r[:, 2] - r[:, 0]) * (r[:, 3] - r[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def assign(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, column) pairs overlapping by at least ``min_iou``, each row and column used once.

    Faces in one frame rarely overlap, so each usually has a single candidate
    and the pairing is plain. Only contested boxes need the optimal assignment
    (most total IoU), and only then is scipy imported: ``scipy.optimize`` costs
    ~0.7 s of start-up, a quarter of the time to the first annotated frame.
    """
    ok = iou >= min_iou
    if not ok.any():
        return []
    if (ok.sum(axis=0) <= 1).all() and (ok.sum(axis=1) <= 1).all():
        rows, cols = np.nonzero(ok)
        return list(zip(rows.tolist(), cols.tolist()))
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-np.where(ok, iou, 0.0))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if ok[r, c]]


@dataclass
class Track:
    id: int
    box: tuple[float, float, float, float]
    probs: np.ndarray
    parts: np.ndarray = field(default_factory=lambda: np.ones(2) * 0.5)
    label: int = 0
    missed: int = 0
    age: int = 0
    hits: int = 1
    """Frames this track's face was seen in (a video shows a face once it is confirmed)."""
    evidence: float = 0.0
    """Sum of the quality of the frames its verdict was judged on."""
    challenger: int = -1
    """The class the latest clear frames voted for, and how many clear frames in a row did."""
    streak: int = 0
    settled: bool = False
    """It has had a clear view (quality >= ``GOOD_QUALITY``): its label is a verdict, not a guess."""

    @property
    def verdict(self) -> str:
        return LABELS[self.label]


@dataclass
class Tracker:
    """IoU tracker with per-track verdict smoothing.

    ``alpha`` is the weight of the newest frame in the moving average;
    ``margin`` is how far a challenger must lead the current label to replace it.
    """

    alpha: float = 0.35
    margin: float = 0.15
    min_iou: float = 0.25
    max_missed: int = 10
    change_frames: int = 3
    """Clear frames in a row that must each show a new class before a settled verdict changes to it: a
    hand passing in front or a frame the classifier gets wrong does not flip a person (``VideoAnalyzer``
    sets it to ``CHANGE_SECONDS`` of the source's frames)."""
    tracks: list[Track] = field(default_factory=list)
    _next_id: int = 1

    def pairs(self, faces: list[Face]) -> list[tuple[int, int]]:
        """(face index, track index) of each face that joins a known track, changing nothing."""
        boxes = np.array([f.box for f in faces], dtype=float).reshape(-1, 4)
        known = np.array([t.box for t in self.tracks], dtype=float).reshape(-1, 4)
        return assign(iou_matrix(boxes, known), self.min_iou)

    def match(self, faces: list[Face], pairs: list[tuple[int, int]]) -> list[Track | None]:
        """The track each face would join (None: a new face), from ``pairs(faces)``, changing nothing.

        Lets a caller decide per face, before classifying, whether its track's
        verdict can be reused; the same pairs then go to ``update``.
        """
        found: list[Track | None] = [None] * len(faces)
        for r, c in pairs:
            found[r] = self.tracks[c]
        return found

    def update(self, faces: list[Face], pairs: list[tuple[int, int]] | None = None) -> list[Face]:
        """Assign track ids, smooth labels in place, forget lost tracks.

        A face without ``probs`` (not classified this frame) keeps its track's
        verdict: the track follows its box and the smoothed label stays.
        ``pairs`` is ``pairs(faces)`` when the caller already has it.
        """
        pairs = self.pairs(faces) if pairs is None else pairs
        matched_faces = {r for r, _ in pairs}
        matched_tracks = {c for _, c in pairs}
        for r, c in pairs:
            self._follow(self.tracks[c], faces[r])
        for i, face in enumerate(faces):
            if i not in matched_faces:
                self._start(face)
        for j, track in enumerate(self.tracks):
            if j not in matched_tracks and track.age > 0:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for t in self.tracks:
            t.age += 1
        return faces

    def _start(self, face: Face) -> None:
        probs = face.probs if face.probs is not None else np.ones(len(LABELS)) / len(LABELS)
        parts = np.array([face.nose_visible, face.mouth_visible], float)
        track = Track(self._next_id, face.box, np.asarray(probs, float), parts, int(np.argmax(probs)))
        self._next_id += 1
        self.tracks.append(track)
        if face.probs is not None:
            quality = 1.0 if face.quality is None else face.quality
            track.evidence, track.settled = quality, quality >= GOOD_QUALITY
        self._apply(track, face)

    def _follow(self, track: Track, face: Face) -> None:
        track.box, track.missed, track.hits = face.box, 0, track.hits + 1
        clear = False
        if face.probs is not None:
            quality = 1.0 if face.quality is None else face.quality
            # a young track averages its views by quality, then the newest clear view weighs alpha
            weight = max(self.alpha * quality, quality / (track.evidence + quality)) if quality > 0 else 0.0
            track.probs = (1 - weight) * track.probs + weight * np.asarray(face.probs, float)
            parts = np.array([face.nose_visible, face.mouth_visible], float)
            track.parts = (1 - weight) * track.parts + weight * parts
            track.evidence += quality
            clear = quality >= GOOD_QUALITY
            if clear:
                vote = int(np.argmax(face.probs))
                track.streak = track.streak + 1 if vote == track.challenger else 1
                track.challenger = vote
        best = int(np.argmax(track.probs))
        if not track.settled:
            track.label, track.settled = best, clear
        elif (clear and best != track.label and track.probs[best] - track.probs[track.label] > self.margin
              and track.challenger == best and track.streak >= self.change_frames):
            track.label = best
        self._apply(track, face)

    @staticmethod
    def _apply(track: Track, face: Face) -> None:
        face.track = track.id
        face.settled = track.settled
        face.label = LABELS[track.label]
        face.label_score = float(track.probs[track.label])
        face.nose_visible = bool(track.parts[0] >= 0.5)
        face.mouth_visible = bool(track.parts[1] >= 0.5)
