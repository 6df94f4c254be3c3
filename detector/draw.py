"""Annotators that draw the verdicts on a frame.

Each annotator does one thing and takes ``(image, faces)``; stack them as
needed (supervision's style): ``annotate(image, faces, [BoxAnnotator(),
LabelAnnotator(), HudAnnotator(fps=...)])``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from detector.types import LABELS, Face

COLOURS = {"mask": (60, 180, 60), "incorrect": (0, 170, 255), "no_mask": (40, 40, 230), None: (200, 200, 200)}
"""BGR: green for a mask, amber for a mask worn wrong, red for none."""
FONT = cv2.FONT_HERSHEY_SIMPLEX


class Annotator(Protocol):
    def __call__(self, image: np.ndarray, faces: list[Face]) -> None: ...


def _thickness(image: np.ndarray) -> int:
    return max(1, round(max(image.shape[:2]) / 400))


def checking(face: Face) -> bool:
    """A tracked face not yet seen clearly: its label is a guess, shown grey as "checking", not as a verdict."""
    return face.track is not None and not face.settled


def colour_of(face: Face) -> tuple[int, int, int]:
    return COLOURS[None] if checking(face) else COLOURS.get(face.label, COLOURS[None])


@dataclass
class BoxAnnotator:
    """A box around each face in the colour of its label."""

    def __call__(self, image: np.ndarray, faces: list[Face]) -> None:
        t = _thickness(image)
        for f in faces:
            x1, y1, x2, y2 = (int(round(v)) for v in f.box)
            cv2.rectangle(image, (x1, y1), (x2, y2), colour_of(f), t, cv2.LINE_AA)


def exposed_text(face: Face) -> str:
    """What a worn mask leaves uncovered, in words ("" when nothing is)."""
    parts = [name for name, seen in (("nose", face.nose_visible), ("mouth", face.mouth_visible)) if seen]
    return " + ".join(parts) + " visible" if parts else ""


@dataclass
class LabelAnnotator:
    """Label and score above each box, and what is exposed below it."""

    show_exposed: bool = True

    def __call__(self, image: np.ndarray, faces: list[Face]) -> None:
        scale = max(0.4, max(image.shape[:2]) / 1400)
        t = _thickness(image)
        for f in faces:
            x1, y1, _, y2 = (int(round(v)) for v in f.box)
            colour = colour_of(f)
            text = "checking" if checking(f) else f"{f.label or '?'} {f.label_score:.2f}"
            (tw, th), base = cv2.getTextSize(text, FONT, scale, t)
            top = max(y1 - th - base - 2, 0)
            cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
            cv2.putText(image, text, (x1 + 2, top + th + 1), FONT, scale, (0, 0, 0), t, cv2.LINE_AA)
            exposed = exposed_text(f) if f.label != "no_mask" and not checking(f) else ""
            if self.show_exposed and exposed:
                cv2.putText(image, exposed, (x1, y2 + th + 4), FONT, scale * 0.9, colour, t, cv2.LINE_AA)


@dataclass
class HudAnnotator:
    """Running FPS and counts per label in the top-left corner."""

    fps: float = 0.0

    def __call__(self, image: np.ndarray, faces: list[Face]) -> None:
        counts = Counter(f.label for f in faces)
        lines = [f"FPS {self.fps:.1f}"] + [f"{lab}: {counts.get(lab, 0)}" for lab in LABELS]
        scale = max(0.45, max(image.shape[:2]) / 1500)
        t = _thickness(image)
        for i, line in enumerate(lines):
            y = int((i + 1) * 24 * scale / 0.5)
            colour = COLOURS.get(LABELS[i - 1], COLOURS[None]) if i else (255, 255, 255)
            cv2.putText(image, line, (8, y), FONT, scale, (0, 0, 0), t + 2, cv2.LINE_AA)
            cv2.putText(image, line, (8, y), FONT, scale, colour, t, cv2.LINE_AA)


def annotate(image: np.ndarray, faces: list[Face], annotators: list[Annotator]) -> np.ndarray:
    """A copy of ``image`` with every annotator applied in order."""
    out = image.copy()
    for annotator in annotators:
        annotator(out, faces)
    return out
