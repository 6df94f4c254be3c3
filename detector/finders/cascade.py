"""MTCNN's box arithmetic, as the ``mtcnn`` package does it: the image pyramid, its NMS variant, squaring,
regression and the bilinear patch sampling of each stage.

Apart from the nets (``detector.finders.mtcnn``) because this is where faithfulness to the package lives:
every function here is plain numpy and cv2 and is checked against the package's results
(``tests/test_mtcnn_onnx.py``), while the nets and their sessions are a separate concern.
"""

from __future__ import annotations

import numpy as np

PNET_CELL = 12
"""PNet's receptive field: the smallest side a pyramid level may have."""


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Scales 12/min_face_size * factor**k while the scaled short side stays >= 12.

    The package computes the level count from a formula that assumes
    min_face_size == 20; counting levels directly keeps every level valid.
    """
    first, short, scales = PNET_CELL / min_face_size, min(height, width), []
    while short * first * factor ** len(scales) >= PNET_CELL:
        scales.append(first * factor ** len(scales))
    return scales


def nms_keep(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """The package's NMS: drop a box if ANY higher-ranked box overlaps it too much.

    Unlike greedy NMS, suppressed boxes still suppress others; this is what
    ``mtcnn.utils.bboxes.nms`` does, so it is kept for parity. Rows must be
    sorted by score, best first. Returns a boolean keep-mask.
    """
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    area = (x2 - x1) * (y2 - y1)
    inter_w = np.maximum(0.0, np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1))
    inter_h = np.maximum(0.0, np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1))
    inter = inter_w * inter_h
    if method == "min":
        denom = np.minimum(area[:, None], area)
    else:
        denom = area[:, None] + area - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = np.triu(inter / denom > threshold, k=1)
    return ~overlap.any(axis=0)


def sort_by_score(boxes: np.ndarray) -> np.ndarray:
    """Best first, with the package's tie order (reversed ascending argsort)."""
    return boxes[np.argsort(boxes[:, 4])[::-1]]


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow the short side around the centre: the nets expect square patches."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2], out[:, 3] = out[:, 0] + side, out[:, 1] + side
    return out


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply RNet/ONet offsets, scaled by the package's inclusive (+1) sizes."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] += offsets.astype(np.float64) * np.stack([w, h, w, h], axis=1)
    return out


def crop_resize(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Bilinear patches exactly like ``tf.image.crop_and_resize`` as the package calls it.

    The package normalises box coordinates by (H, W) and TF maps them back by
    (H-1, W-1), sampling ``size`` points edge to edge; samples outside the
    image are 0 (mid-grey after normalisation). Patches are HxW, not transposed.
    """
    height, width = image.shape[:2]
    t = np.arange(size, dtype=np.float64) / (size - 1)

    def axis(lo: np.ndarray, hi: np.ndarray, n: int):
        pos = (lo / n * (n - 1))[:, None] + ((hi - lo) / n * (n - 1))[:, None] * t
        valid = (pos >= 0) & (pos <= n - 1)
        pos = np.clip(pos, 0, n - 1)
        low = np.floor(pos).astype(np.intp)
        return low, np.ceil(pos).astype(np.intp), (pos - low).astype(np.float32), valid

    y0, y1, ly, vy = axis(boxes[:, 1], boxes[:, 3], height)
    x0, x1, lx, vx = axis(boxes[:, 0], boxes[:, 2], width)
    flat = image.reshape(-1, 3)  # take() on flat indices is ~3x faster than 2-D fancy indexing
    row0, row1 = (y0 * width)[:, :, None], (y1 * width)[:, :, None]
    col0, col1 = x0[:, None, :], x1[:, None, :]
    lx, ly = lx[:, None, :, None], ly[:, :, None, None]
    top_left, top_right = flat.take(row0 + col0, axis=0), flat.take(row0 + col1, axis=0)
    bottom_left, bottom_right = flat.take(row1 + col0, axis=0), flat.take(row1 + col1, axis=0)
    top = top_left + (top_right - top_left) * lx
    patches = top + (bottom_left + (bottom_right - bottom_left) * lx - top) * ly
    patches[~(vy[:, :, None] & vx[:, None, :])] = 0.0
    return patches
