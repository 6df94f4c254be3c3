"""Plain data that flows between the pipeline stages.

Every stage takes and returns these dataclasses, so a stage can be swapped (a
faster face finder, another classifier) without touching the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LABELS: tuple[str, ...] = ("mask", "incorrect", "no_mask")
"""Classifier output order; also the folder names of a labelled dataset."""


@dataclass
class Detection:
    """A face box found by the face finder, before anything else is known.

    box is (x1, y1, x2, y2) in pixels of the frame; keypoints are MTCNN's five
    points (left eye, right eye, nose, mouth left, mouth right) as (5, 2).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray | None = None


@dataclass
class Face:
    """Everything the pipeline knows about one face in one frame."""

    box: tuple[float, float, float, float]
    score: float = 0.0
    """Face-finder confidence."""
    landmarks: np.ndarray | None = None
    """dlib's 68 points as (68, 2) float32, in frame pixels."""
    label: str | None = None
    label_score: float = 0.0
    """Confidence of ``label`` (after smoothing when the face is tracked)."""
    probs: np.ndarray | None = None
    """Classifier probabilities in ``LABELS`` order, this frame only."""
    nose_visible: bool = False
    mouth_visible: bool = False
    track: int | None = None
    quality: float | None = None
    """How well this frame shows the face, in [0, 1] (``detector.quality``); None where it was not judged."""
    settled: bool = False
    """Whether the verdict rests on a clear view: on video, the track has had a good-quality frame
    (until then ``label`` is only the best guess so far, drawn grey as "checking"); on a photo,
    the photo's own view is good enough."""

    def to_json(self, scale: float = 1.0) -> dict:
        """The per-face record of the ``--json`` contract; ``scale`` is the analysed image's size over the
        input's (a large photo is analysed smaller), so the box is in the input's own pixels."""
        return {
            "box": [round(float(v) / scale, 1) for v in self.box],
            "label": self.label,
            "score": round(float(self.label_score), 4),
            "nose_visible": bool(self.nose_visible),
            "mouth_visible": bool(self.mouth_visible),
            "track": self.track,
            "quality": None if self.quality is None else round(float(self.quality), 3),
            "settled": bool(self.settled),
        }


@dataclass
class Frame:
    """One image from a source. ``image`` is BGR uint8, as OpenCV reads it."""

    image: np.ndarray
    index: int
    time: float
    """Seconds from the start of a video, or since the capture began (live)."""
    source: str
    faces: list[Face] = field(default_factory=list)
    scale: float = 1.0
    """``image``'s size over the input's: below 1 for a large photo decoded smaller (``detector.images``)."""


def largest(faces: list):
    """The face (``Face`` or ``Detection``) with the largest box: a single-face photo's subject."""
    return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
