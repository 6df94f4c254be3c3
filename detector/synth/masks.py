"""Paints a face mask onto a face from its 68 landmarks.

Used by the embedded demo (``python -m detector --demo``) and by
``training.recipe.synth`` to make masked faces in every way of wearing one. A mask is
a polygon along the jaw whose top edge sits on the nose bridge (worn), under
the nose (incorrect) or under the lower lip (on the chin, incorrect), filled in
a random colour and pattern with shading, so no class can be told by colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STATES: tuple[str, ...] = ("worn", "under_nose", "on_chin")
"""The ways of wearing a mask that are painted: the ones the classifier's crop shows."""
STATE_LABEL = {"worn": "mask", "under_nose": "incorrect", "on_chin": "incorrect"}
"""Which classifier label a painted state stands for."""

COLOURS = {  # BGR
    "black": (30, 30, 30), "white": (235, 235, 235), "blue": (200, 160, 90),
    "light_blue": (230, 200, 150), "green": (120, 170, 80), "grey": (150, 150, 150),
    "pink": (190, 170, 240), "navy": (90, 40, 20), "beige": (170, 195, 215),
}
PATTERNS: tuple[str, ...] = ("plain", "pleats", "dots", "stripes", "checks")
PATTERN_WEIGHTS = (0.45, 0.3, 0.09, 0.08, 0.08)
"""Most real masks are plain or pleated; patterns are there so colour and print never decide."""


@dataclass
class MaskStyle:
    colour: tuple[int, int, int] = COLOURS["light_blue"]
    pattern: str = "pleats"
    shade: float = 0.35
    """How much darker the mask gets toward its edges (0: flat)."""
    loops: bool = True
    """Draw ear loops toward the ears."""
    drop: float = 0.12
    """How far the lower edge hangs below the chin, as a share of face height."""

    @classmethod
    def random(cls, rng: np.random.Generator) -> MaskStyle:
        colour = np.array(list(COLOURS.values())[rng.integers(len(COLOURS))], dtype=float)
        colour = np.clip(colour + rng.normal(0, 15, 3), 0, 255)
        return cls(
            colour=tuple(int(c) for c in colour),
            pattern=str(rng.choice(PATTERNS, p=PATTERN_WEIGHTS)),
            shade=float(rng.uniform(0.1, 0.5)),
            loops=bool(rng.random() < 0.6),
            drop=float(rng.uniform(0.05, 0.2)),
        )


def mask_polygon(lm: np.ndarray, state: str, drop: float = 0.12) -> np.ndarray:
    """Outline of a mask in ``state`` as (N, 2) int32 image points."""
    if state not in STATES:
        raise ValueError(f"unknown mask state {state!r}; one of {STATES}")
    face_h = float(np.linalg.norm(lm[8] - lm[27]))
    centre = lm[27:36].mean(axis=0)
    if state == "worn":
        top = [lm[28] + (lm[1] - lm[28]) * 0.9, lm[28] + (lm[15] - lm[28]) * 0.9]
        top_y = lm[28][1]
    elif state == "under_nose":
        top_y = lm[33][1] + 0.35 * (lm[51][1] - lm[33][1])
    else:  # on_chin
        top_y = lm[57][1] + 0.25 * (lm[8][1] - lm[57][1])
    jaw = [p for p in lm[1:16] if p[1] > top_y]
    jaw = [p + (p - centre) * 0.08 for p in jaw]  # a mask stands off the skin a little
    chin = lm[8] + np.array([0.0, drop * face_h])
    mid = len(jaw) // 2
    lower = jaw[:mid] + [chin] + jaw[mid + 1:]
    if state == "worn":
        outline = [top[0], *lower, top[1], lm[28]]
    else:
        left, right = lower[0], lower[-1]
        sag = 0.04 * face_h
        outline = [np.array([left[0], top_y]), *lower, np.array([right[0], top_y]),
                   np.array([(left[0] + right[0]) / 2, top_y - sag])]
    return np.round(np.array(outline)).astype(np.int32)


def _texture(h: int, w: int, style: MaskStyle, rng: np.random.Generator) -> np.ndarray:
    """The mask cloth, its colour and pattern, as float BGR."""
    cloth = np.empty((h, w, 3), np.float32)
    cloth[:] = style.colour
    step = max(4, h // 8)
    darker = np.array(style.colour, np.float32) * 0.6
    if style.pattern == "pleats":
        for y in range(step // 2, h, step):
            cloth[y : y + max(1, step // 5)] = darker
    elif style.pattern == "stripes":
        for x in range(0, w, step):
            cloth[:, x : x + step // 2] = 255 - np.array(style.colour) * 0.5
    elif style.pattern == "dots":
        for y in range(step // 2, h, step):
            for x in range(step // 2, w, step):
                cv2.circle(cloth, (x, y), max(1, step // 4), tuple(float(c) for c in 255 - darker), -1)
    elif style.pattern == "checks":
        yy, xx = np.mgrid[0:h, 0:w]
        cloth[((yy // step + xx // step) % 2) == 1] = darker
    cloth += rng.normal(0, 6, cloth.shape).astype(np.float32)  # weave noise
    return cloth


def paint_mask(
    image: np.ndarray, landmarks: np.ndarray, state: str, style: MaskStyle | None = None,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A copy of ``image`` (BGR uint8) with a mask painted on the face."""
    rng = rng or np.random.default_rng(0)
    style = style or MaskStyle()
    poly = mask_polygon(landmarks, state, style.drop)
    h, w = image.shape[:2]
    alpha = np.zeros((h, w), np.float32)
    cv2.fillPoly(alpha, [poly], 1.0, lineType=cv2.LINE_AA)
    x, y, bw, bh = cv2.boundingRect(poly)
    x, y = max(x, 0), max(y, 0)
    bw, bh = min(bw, w - x), min(bh, h - y)
    if bw < 2 or bh < 2:
        return image.copy()
    cloth = np.zeros((h, w, 3), np.float32)
    cloth[y : y + bh, x : x + bw] = _texture(bh, bw, style, rng)
    # shading: darker toward the rim, so the mask reads as a curved surface
    inside = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    rim = np.clip(inside / max(1.0, 0.25 * min(bw, bh)), 0, 1)
    cloth *= (1 - style.shade + style.shade * rim)[..., None]
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0)[..., None]
    out = image.astype(np.float32) * (1 - alpha) + cloth * alpha
    if style.loops:
        thick = max(1, int(0.01 * max(bw, bh)))
        colour = tuple(float(c) for c in np.array(style.colour) * 0.9)
        for corner, ear in ((poly[0], landmarks[0]), (poly[-2] if state == "worn" else poly[-3], landmarks[16])):
            cv2.line(out, tuple(int(v) for v in corner), tuple(int(v) for v in ear), colour, thick, cv2.LINE_AA)
    return np.clip(out, 0, 255).astype(np.uint8)
