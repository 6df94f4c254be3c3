"""Face alignment and the grayscale crop the classifier sees.

This is the one preprocessing path: the detector calls it on live frames and
``training`` imports it to build its datasets, so a model is always fed
exactly what it was trained on.
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 96
"""Side of the stored/aligned grayscale face crop, in pixels."""
MODEL_SIZE = 64
"""Side of the classifier input a model is built for unless told otherwise; crops are resized from
CROP_SIZE. The detector reads the side from the ONNX file it loads, so a classifier trained at
another side (``"input_size"`` in a training config) runs without a change here."""
PATCH_SIZE = 32
"""Side of a nose or mouth patch given to the visibility model."""

# Where five stable landmarks land in the aligned crop, as fractions of its side.
# Eyes, the top of the nose bridge, the nose tip and the chin: eyes and bridge
# stay visible above any mask, the two lower points keep the vertical scale
# sane when the head turns (the eye distance alone shrinks with yaw).
_TEMPLATE = np.array(
    [
        [0.35, 0.30],  # left eye centre (landmarks 36-41)
        [0.65, 0.30],  # right eye centre (42-47)
        [0.50, 0.29],  # top of the nose bridge (27)
        [0.50, 0.49],  # nose tip (30)
        [0.50, 0.85],  # chin (8)
    ],
    dtype=np.float32,
)

NECK_REGION = (0.05, 0.55, 0.95, 1.45)
"""The neck patch in the aligned crop's coordinates, as fractions of its side (x1, y1, x2, y2):
from the mouth over the chin (0.85) down the neck, where a mask pulled off the face hangs; the
mouth and jaw in it show whether what lies below belongs to this face."""
NECK_SIZE = 48
"""Side of the neck patch, in pixels."""

CHIN_REGION = (0.3, 0.75, 0.7, 0.85)
"""Where a mask pulled onto the chin shows in the aligned crop (x1, y1, x2, y2, fractions of its side):
between the lower lip and the chin (0.85)."""

NOSE_POINTS = slice(27, 36)
MOUTH_POINTS = slice(48, 68)


def _anchor_points(landmarks: np.ndarray) -> np.ndarray:
    """The five landmark-derived points matched against ``_TEMPLATE``."""
    return np.stack(
        [
            landmarks[36:42].mean(axis=0),
            landmarks[42:48].mean(axis=0),
            landmarks[27],
            landmarks[30],
            landmarks[8],
        ]
    ).astype(np.float32)


def alignment_matrix(landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """2x3 similarity transform from frame pixels to the aligned crop.

    A least-squares similarity (rotation, uniform scale, shift) fitted to five
    points: eyes level, face centred, scale set by the whole face height.
    """
    src = _anchor_points(landmarks)
    dst = _TEMPLATE * size
    matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    if not _usable(matrix):  # degenerate points: fall back to eyes only
        matrix, _ = cv2.estimateAffinePartial2D(src[:2], dst[:2])
    if not _usable(matrix):  # points all in one place (a fit on a box of a few pixels)
        matrix = _extent_matrix(landmarks, size)
    return matrix.astype(np.float32)


def template_residual(landmarks: np.ndarray, matrix: np.ndarray, size: int = CROP_SIZE) -> float:
    """RMS distance (crop pixels) between the anchor points, moved by ``matrix``, and where the template
    puts them: small for a fit on a face, large where the landmarks were laid on something else."""
    moved = transform_points(_anchor_points(landmarks), matrix)
    return float(np.sqrt(((moved - _TEMPLATE * size) ** 2).sum(axis=1).mean()))


def _usable(matrix: np.ndarray | None) -> bool:
    """A fitted transform that is finite and does not shrink the face to a point."""
    return matrix is not None and bool(np.isfinite(matrix).all()) and abs(np.linalg.det(matrix[:, :2])) > 1e-6


def _extent_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Scale and shift that put the landmarks' extent (at least a pixel) in the middle of the crop."""
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    scale = 0.6 * size / max(float((high - low).max()), 1.0)
    centre = (low + high) / 2
    return np.array([[scale, 0, size / 2 - scale * centre[0]], [0, scale, size / 2 - scale * centre[1]]], np.float64)


def to_gray(image: np.ndarray) -> np.ndarray:
    """BGR or gray uint8 image to gray uint8."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def align_face(
    image: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE, matrix: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Aligned grayscale face crop and the landmarks moved into it.

    Grayscale on purpose: mask colour says nothing about how a mask is worn,
    and a model that never sees colour cannot learn "blue means mask".
    Parts of the crop outside the frame (a face at the edge of a tight photo)
    are filled flat with the face's mean grey: replicating the edge instead
    draws streaks under the chin that look like a mask pulled down.
    ``matrix`` is the face's ``alignment_matrix`` where the caller has it (the neck patch needs it too).
    """
    matrix = alignment_matrix(landmarks, size) if matrix is None else matrix
    crop, _ = _warp_filled(to_gray(image), matrix, size)
    return crop, transform_points(landmarks, matrix)


def neck_patch(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """The grayscale patch under the chin (NECK_SIZE square) and the share of it inside the frame.

    A mask pulled down onto the neck or hanging from an ear lies below the
    aligned crop, which ends at the chin: without this patch the face looks
    bare. Cut with the face's own alignment, so it is the same region of every
    face; the share inside tells a tight photo (the neck not in it, nothing to
    say) from a face in a scene. ``matrix`` is the face's ``alignment_matrix``
    (frame to aligned crop), fitted once for the crop and this patch.
    """
    x1, y1, x2, y2 = (v * CROP_SIZE for v in NECK_REGION)
    scale = NECK_SIZE / (x2 - x1)
    to_patch = np.array([[scale, 0, -x1 * scale], [0, scale, -y1 * scale], [0, 0, 1]], np.float64)
    to_neck = (to_patch @ np.vstack([matrix, [0, 0, 1]]))[:2].astype(np.float32)
    return _warp_filled(to_gray(image), to_neck, NECK_SIZE)


def _warp_filled(gray: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The ``size`` square that ``matrix`` maps the frame to, and the share of it inside the frame.

    Parts outside the frame are filled flat with the inside's mean grey.
    """
    gray, warp = _shrunk(gray, matrix, size)
    crop = cv2.warpAffine(gray, warp, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    if _within(warp, size, gray.shape):
        return crop, 1.0
    inside = cv2.warpAffine(np.full(gray.shape, 255, np.uint8), warp, (size, size),
                            flags=cv2.INTER_NEAREST, borderValue=0)
    outside = inside == 0
    if outside.any():
        crop[outside] = int(crop[~outside].mean()) if (~outside).any() else 128
    return crop, float(1.0 - outside.mean())


def _shrunk(gray: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of the frame the crop comes from, shrunk by area averaging, and the warp from it.

    A face several times larger than the crop, warped directly with bilinear
    sampling, keeps only every few pixels: skin texture and sensor noise alias
    into speckle, and the same face gives different crops at different
    resolutions. Shrinking the face's region first (``INTER_AREA``, as any
    resize down should) leaves the warp a rotation at about scale 1.
    Faces at most twice the crop's scale are warped as they are.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale >= 0.5:
        return gray, matrix
    x, y = _corners_in_frame(matrix, size)
    h, w = gray.shape[:2]
    x0, y0 = max(int(np.floor(x.min())) - 2, 0), max(int(np.floor(y.min())) - 2, 0)
    x1, y1 = min(int(np.ceil(x.max())) + 2, w), min(int(np.ceil(y.max())) + 2, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return gray, matrix
    region = gray[y0:y1, x0:x1]
    small_w, small_h = max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale))
    small = cv2.resize(region, (small_w, small_h), interpolation=cv2.INTER_AREA)
    fx, fy = small_w / (x1 - x0), small_h / (y1 - y0)
    # frame = small / f + origin (area resize maps pixel centres so, up to a half-pixel shift)
    to_frame = np.array([[1 / fx, 0, x0 + 0.5 / fx - 0.5], [0, 1 / fy, y0 + 0.5 / fy - 0.5], [0, 0, 1]], np.float64)
    warp = matrix.astype(np.float64) @ to_frame
    return small, warp[:2].astype(np.float32)


def _within(matrix: np.ndarray, size: int, shape: tuple[int, ...]) -> bool:
    """Whether the whole crop comes from inside the frame, so no fill is needed.

    The crop is the image of a square under an affine map: if its four corners
    fall inside the frame, every pixel does. Checking them skips warping a
    full-frame mask for each face in the middle of a video frame.
    """
    return _share_inside(shape, matrix, (0, 0, size - 1, size - 1), steps=2) == 1.0


def _corners_in_frame(matrix: np.ndarray, far: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame x and y of the crop points (0, 0), (far, 0), (0, far), (far, far) under ``matrix``
    (frame to crop): the crop's outline where ``far`` is its size."""
    corners = np.array([[0, 0], [far, 0], [0, far], [far, far]], np.float32)
    x, y = transform_points(corners, cv2.invertAffineTransform(matrix)).T
    return x, y


def chin_unseen(shape: tuple[int, ...], matrix: np.ndarray) -> float:
    """The share of ``CHIN_REGION`` that lies outside the photo: 1 where the photo ends above the chin.

    Why: a photo cropped tight to the face often ends under the lips. There a
    mask on the chin cannot be seen, yet the flat fill below the photo's edge
    looks like one to the classifier, and bare faces were called ``incorrect``
    (7 of the 1280 held-out photos, docs/decisions.md, a chin the photo cuts off).
    ``shape`` is the frame's, ``matrix`` the face's ``alignment_matrix``.
    """
    return 1.0 - _share_inside(shape, matrix, tuple(v * CROP_SIZE for v in CHIN_REGION))


def _share_inside(shape: tuple[int, ...], matrix: np.ndarray, box: tuple[float, ...], steps: int = 12) -> float:
    """Share of a box of the crop (x1, y1, x2, y2, crop pixels) that comes from inside the frame,
    sampled on a ``steps`` x ``steps`` grid (a warp of the whole frame would cost more than the face)."""
    xs, ys = np.meshgrid(np.linspace(box[0], box[2], steps), np.linspace(box[1], box[3], steps))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    x, y = transform_points(points, cv2.invertAffineTransform(matrix)).T
    h, w = shape[:2]
    return float(((x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)).mean())


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, 2) points."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def model_input(crops: list[np.ndarray] | np.ndarray, size: int = MODEL_SIZE) -> np.ndarray:
    """Aligned crops to the classifier's float tensor (N, size, size, 1).

    Scaled to [0, 1] only: brightness changes are taught by augmentation.
    """
    batch = [c if c.shape[:2] == (size, size) else cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA)
             for c in crops]
    return np.stack(batch).astype(np.float32)[..., None] / 255.0


def part_box(points: np.ndarray, pad: float, size: int) -> tuple[int, int, int, int]:
    """Square box around some landmarks, grown by ``pad`` of its side, clipped to the crop.

    Never empty: a landmark fit that lands wholly outside the crop (dlib on a box that holds
    no face) still gets a 2 px sliver at the crop's edge, which the visibility model judges
    like any other patch, instead of an empty slice that stops the pipeline."""
    (x1, y1), (x2, y2) = points.min(axis=0), points.max(axis=0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(x2 - x1, y2 - y1, 4.0) * (0.5 + pad)
    box = [cx - half, cy - half, cx + half, cy + half]
    x1, y1, x2, y2 = (int(round(min(max(v, 0), size))) for v in box)
    x1, y1 = min(x1, size - 2), min(y1, size - 2)
    return x1, y1, max(x2, x1 + 2), max(y2, y1 + 2)


def part_patches(crop: np.ndarray, crop_landmarks: np.ndarray) -> np.ndarray:
    """Nose and mouth patches (2, PATCH_SIZE, PATCH_SIZE) cut where the landmarks put them.

    The landmarks only *locate* the regions: a landmark model places a nose
    under a mask too, so it is the pixels in these patches that decide.
    """
    size = crop.shape[0]
    patches = []
    for points, pad in ((crop_landmarks[NOSE_POINTS], 0.25), (crop_landmarks[MOUTH_POINTS], 0.2)):
        x1, y1, x2, y2 = part_box(points, pad, size)
        patch = crop[y1:y2, x1:x2]
        patches.append(cv2.resize(patch, (PATCH_SIZE, PATCH_SIZE), interpolation=cv2.INTER_AREA))
    return np.stack(patches)


def parts_input(patches: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Patches (N, 2, P, P) uint8 to the visibility model's float tensor (N*2, P, P, 1)."""
    arr = np.asarray(patches, dtype=np.float32).reshape(-1, PATCH_SIZE, PATCH_SIZE, 1)
    return arr / 255.0


def neck_input(patches: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Neck patches (N, P, P) uint8 to the neck model's float tensor (N, P, P, 1)."""
    return np.asarray(patches, dtype=np.float32).reshape(-1, NECK_SIZE, NECK_SIZE, 1) / 255.0
