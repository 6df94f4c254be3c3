"""Consecutive frames of one source: faces followed and tracked, a verdict per person, and the video shortcuts.

A camera gives the same faces frame after frame, so most of a photo's work need
not be redone: ONet follows known faces (``detector.finders.search`` looks for new ones
a part at a time), dlib's landmark fit is redone only every few frames and
carried with the box in between, and the tracker turns each face's frames into
one person's verdict (``detector.track``); ``benchmarks/README.md`` measures
what each buys.
"""

from __future__ import annotations

import numpy as np

from detector.finders import apart, unscaled
from detector.finders.search import Searcher
from detector.pipeline import Box, Pipeline
from detector.track import Track, Tracker
from detector.types import Detection, Face


def carry_landmarks(landmarks: np.ndarray, fitted_box: Box, box: Box) -> np.ndarray:
    """Move a landmark fit made in ``fitted_box`` along with the face to ``box`` (shift and scale)."""
    scale = ((box[2] - box[0]) / max(fitted_box[2] - fitted_box[0], 1e-6)
             + (box[3] - box[1]) / max(fitted_box[3] - fitted_box[1], 1e-6)) / 2
    old = np.array([fitted_box[0] + fitted_box[2], fitted_box[1] + fitted_box[3]], np.float32) / 2
    new = np.array([box[0] + box[2], box[1] + box[3]], np.float32) / 2
    return ((landmarks - old) * scale + new).astype(np.float32)


CHANGE_SECONDS = 0.25
"""How long clear frames must show a person's new class before their settled verdict changes: longer than
a hand passing in front of a face, and with the moving average's own lag a mask pulled down still shows
within half a second of clear frames (tests/test_person.py)."""
LIVE_FPS = 15.0
"""The frame rate assumed for a source that does not say (a camera, a stream)."""


class VideoAnalyzer:
    """Consecutive frames of one source: tracking, smoothed verdicts and the video shortcuts.

    For a followed face the costliest step, dlib's landmark fit, is redone only
    on the track's turn (``refit_every``); in between its last fit is carried
    with the box and the classifier still sees the face on every frame, so a
    mask pulled down shows exactly as soon as without the shortcut.
    ``classify_every`` > 1 also reuses a sure verdict for a few frames: faster,
    but a change then shows up to N-1 frames late. A face whose verdict was
    reused keeps ``probs`` and ``landmarks`` None on that frame.
    """

    def __init__(self, pipeline: Pipeline, tracker: Tracker | None = None, fps: float | None = None) -> None:
        self.pipeline = pipeline
        self.tracker = tracker or Tracker()
        if tracker is None:  # a verdict changes after CHANGE_SECONDS of clear frames, whatever the frame rate
            self.tracker.change_frames = max(1, round(CHANGE_SECONDS * (fps or LIVE_FPS)))
        plan, finder = pipeline.config.search, pipeline.finder
        self.searcher = Searcher(finder, plan, fps or LIVE_FPS) if plan and finder.refines else None
        self.frames = 0
        self.classified = 0
        """Faces the classifier saw so far; the others reused their track's verdict."""
        self.fitted = 0
        """Faces dlib fitted landmarks to so far; the others were classified on a carried fit."""
        self._fits: dict[int, tuple[Box, np.ndarray]] = {}
        """Track id -> (box, landmarks) of its latest dlib fit."""

    def __call__(self, image: np.ndarray) -> list[Face]:
        config = self.pipeline.config
        faces = [Face(box=d.box, score=d.score) for d in self._detections(image)]
        with self.pipeline.timed("track"):
            pairs = self.tracker.pairs(faces)
            tracks = self.tracker.match(faces, pairs)
        due = [(f, t) for f, t in zip(faces, tracks) if self._turn(t, config.classify_every)]
        fresh = [f for f, t in due if not self._carry(f, t)]
        self.pipeline.judge(image, [f for f, _ in due])
        self.classified, self.fitted = self.classified + len(due), self.fitted + len(fresh)
        with self.pipeline.timed("track"):
            self.tracker.update(faces, pairs)  # judging faces moved no track: the pairs still hold
            live = {t.id for t in self.tracker.tracks}
            self._fits = {i: fit for i, fit in self._fits.items() if i in live}
            self._fits.update((f.track, (f.box, f.landmarks)) for f in fresh)
        self.frames += 1
        return self._confirmed(faces)

    def confirmed(self) -> set[int]:
        """The tracks in view that were seen in ``confirm_frames`` frames: faces, not one-frame boxes."""
        need = self.pipeline.config.confirm_frames
        return {t.id for t in self.tracker.tracks if t.hits >= need}

    def _confirmed(self, faces: list[Face]) -> list[Face]:
        """The faces to show: those whose track was seen in ``confirm_frames`` frames, all in the first ones."""
        need = self.pipeline.config.confirm_frames
        if self.frames <= need:
            return faces
        hits = {t.id: t.hits for t in self.tracker.tracks}
        return [f for f in faces if hits.get(f.track, 0) >= need]

    def _detections(self, image: np.ndarray) -> list[Detection]:
        """Known faces followed by ONet and this frame's part of the search (``detector.finders.search``); without a
        plan, the full search every ``detect_every`` frames and ONet following known boxes in between."""
        if self.searcher is not None:
            return self._followed_and_searched(image)
        k = max(1, self.pipeline.config.detect_every)
        finder = self.pipeline.finder
        boxes = [t.box for t in self.tracker.tracks if t.missed == 0]
        if k == 1 or not finder.refines or self.frames % k == 0 or not boxes:
            return self.pipeline.detect(image)
        with self.pipeline.timed("follow"):  # on the same copy as the search: ONet sees 48 px anyway
            rgb, scale = self.pipeline.search_copy(image)
            boxes = [tuple(v * scale for v in b) for b in boxes]
            return unscaled([d for d in finder.refine(rgb, boxes) if d is not None], scale)

    def _followed_and_searched(self, image: np.ndarray) -> list[Detection]:
        rgb, scale = self.pipeline.search_copy(image)
        followed: list[Detection] = []
        boxes = [tuple(v * scale for v in t.box) for t in self.tracker.tracks if t.missed == 0]  # oldest first
        lost = len(boxes) < len(self.tracker.tracks)
        if boxes:
            with self.pipeline.timed("follow"):
                for found in self.pipeline.finder.refine(rgb, boxes):
                    lost = lost or found is None
                    if found is not None and apart([found], followed, 0.5):  # two tracks on one face: the older
                        followed.append(found)
        with self.pipeline.timed("detect"):
            new = self.searcher(rgb, followed, lost)
        return unscaled(followed + new, scale)

    def _turn(self, track: Track | None, every: int) -> bool:
        """Whether a face needs fresh work this frame: it is new, its track is unsure, or it is its turn.

        Turns come every ``every`` frames, staggered by track id so that a frame
        with a full detection does not also redo every face: the cost spreads
        evenly and the slowest frames (p95) stay short.
        """
        return (
            every <= 1 or track is None or (self.frames + track.id) % every == 0
            or float(track.probs.max()) < self.pipeline.config.confident
        )

    def _carry(self, face: Face, track: Track | None) -> bool:
        """Give ``face`` its track's last landmark fit moved with the box, unless a refit is due."""
        if track is None or track.id not in self._fits or self._turn(track, self.pipeline.config.refit_every):
            return False
        box, landmarks = self._fits[track.id]
        face.landmarks = carry_landmarks(landmarks, box, face.box)
        return True
