"""Paints a face mask onto a face from its 68 landmarks.

Used by the embedded demo (``python -m detector --demo``) and by
``training.synth`` to make masked faces in every way of wearing one. A mask is
a polygon along the jaw whose top edge sits on the nose bridge (worn), under
the nose (incorrect) or under the lower lip (on the chin, incorrect), or a band
pulled down under the chin onto the neck (incorrect; painted only on request,
for the neck model), filled in
a random colour and pattern with shading, so no class can be told by colour,
or in a swatch of real cloth cut from a photo of a worn mask (``MaskStyle.cloth``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STATES: tuple[str, ...] = ("worn", "under_nose", "on_chin")
"""The states painted by default: the ones the classifier's crop shows."""
NECK_STATE = "on_neck"
"""A mask pulled down onto the neck. Not in ``STATES``: the classifier's crop ends at the chin and
would learn a bare face as ``incorrect``; its painting is for the neck model (``training.neck``)."""
ALL_STATES: tuple[str, ...] = (*STATES, NECK_STATE)
STATE_LABEL = {"worn": "mask", "under_nose": "incorrect", "on_chin": "incorrect", NECK_STATE: "incorrect"}
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
    cloth: np.ndarray | None = None
    """A swatch of real mask cloth (BGR, cut from a photo of a worn mask), stretched over the
    mask instead of the painted colour and pattern: real folds, weave and light."""

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
    if state not in ALL_STATES:
        raise ValueError(f"unknown mask state {state!r}; one of {ALL_STATES}")
    if state == NECK_STATE:
        return neck_band(lm, drop)
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


def neck_band(lm: np.ndarray, drop: float = 0.12) -> np.ndarray:
    """Outline of a mask hanging on the neck, as (7, 2) int32 image points.

    A band under the chin, along the face's own axis (bridge to chin) so it tilts with
    the head: its top edge from just over the chin's tip to ``drop`` below it, about
    0.38 of the face's height tall, narrower at the bottom like a neck. Ordered so
    that ``paint_mask`` draws its loops from the two top corners (points 0 and -3).
    """
    face_h = float(np.linalg.norm(lm[8] - lm[27]))
    down = (lm[8] - lm[27]) / max(face_h, 1e-6)
    across = np.array([-down[1], down[0]])
    if np.dot(across, lm[12] - lm[4]) < 0:
        across = -across
    half = 0.45 * float(np.linalg.norm(lm[12] - lm[4]))
    top = lm[8] + down * (drop - 0.06) * face_h
    bottom = top + down * 0.38 * face_h
    arch = down * 0.04 * face_h  # the top edge bows up under the jaw, the lower edge sags
    outline = [top - across * half, bottom - across * 0.8 * half, bottom + arch, bottom + across * 0.8 * half,
               top + across * half, top + across * half / 3 - arch, top - across * half / 3 - arch]
    return np.round(np.array(outline)).astype(np.int32)


def _texture(h: int, w: int, style: MaskStyle, rng: np.random.Generator) -> np.ndarray:
    """The mask cloth: a real swatch stretched to size, or colour and pattern, as float BGR."""
    if style.cloth is not None:
        return cv2.resize(style.cloth, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
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
        base = style.colour if style.cloth is None else style.cloth.reshape(-1, 3).mean(axis=0)
        colour = tuple(float(c) for c in np.array(base) * 0.9)
        for corner, ear in ((poly[0], landmarks[0]), (poly[-2] if state == "worn" else poly[-3], landmarks[16])):
            cv2.line(out, tuple(int(v) for v in corner), tuple(int(v) for v in ear), colour, thick, cv2.LINE_AA)
    return np.clip(out, 0, 255).astype(np.uint8)
