"""MTCNN face finder on onnxruntime, numerically faithful to the ``mtcnn`` package.

The ``mtcnn`` package (ipazc/mtcnn 1.0) needs TensorFlow: seconds to import
and tens of milliseconds of framework overhead per call. This module runs the
package's own nets, exported to ONNX by ``training/recipe/export_mtcnn.py``, and
re-implements its pre/post-processing in numpy + cv2 so that results match the
package (same pyramid scales, same patch sampling, same regression and the
package's own NMS variant), without importing TensorFlow at all.

Deliberate differences from the package:
* the pyramid works for any ``min_face_size >= 12`` (the package only builds a
  valid pyramid for 20 and silently finds nothing otherwise);
* ``refine`` re-scores given boxes with ONet only, to follow tracked faces.

Box rows used internally: ``[x1, y1, x2, y2, score, lx1..lx5, ly1..ly5]``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from detector.finders.cascade import PNET_CELL, crop_resize, nms_keep, pyramid_scales, regress, sort_by_score, square
from detector.runtime import MODELS_DIR, cpu_session_options
from detector.track import iou_matrix
from detector.types import Detection

DEFAULT_MODEL_DIR = MODELS_DIR / "mtcnn"
NMS_PNET_SCALE, NMS_PNET_ALL, NMS_RNET, NMS_ONET = 0.5, 0.7, 0.7, 0.7
KNOWN_IOU = 0.5
"""A PNet proposal overlapping a known face this much is that face: the search drops it before RNet.
Higher than the 0.3 under which the video keeps a searched face apart from followed ones
(``detector.finders.still.apart``): only a proposal that plainly is the followed face is dropped, and
one that regression might move onto a neighbouring face still goes on."""
REFINE_EXPAND = 1.1
"""Tracked boxes drift; ONet needs the whole face inside its patch to regress."""
FRAMED_SIDES = (0.6, 0.75, 0.9, 1.05)
"""Side of the centred squares ``framed`` tries, as fractions of the photo's short side."""
FRAMED_SHIFTS = (-0.1, 0.0, 0.1)
"""Their centre offsets (fractions of the short side), across and down (down x 1.5)."""


class OnnxMTCNN:
    """The ``mtcnn`` package's three-stage cascade on onnxruntime CPU sessions."""

    def __init__(
        self,
        model_dir: Path | None = None,
        min_face_size: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
        scale_factor: float = 0.709,
        threads: int | None = None,
        nets: str | dict[str, str] = "stock",
    ) -> None:
        """Load the nets; raise FileNotFoundError naming any missing model file.

        ``nets`` picks the ONNX files: ``stock`` (the package's nets, parity-tested),
        ``masked`` (fine-tuned on masked faces where a ``<net>_masked.onnx`` exists,
        stock otherwise) or an explicit {net: file name} dict.
        """
        if min_face_size < PNET_CELL:
            raise ValueError(f"min_face_size must be >= {PNET_CELL}, got {min_face_size}")
        if not 0.0 < scale_factor < 1.0:
            raise ValueError(f"scale_factor must be in (0, 1), got {scale_factor}")
        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.scale_factor = scale_factor
        # No spinning (cpu_session_options): workers of three small sessions starve cv2
        # and each other on few cores, measured ~2x slower per frame on 2 cores with it on.
        options = cpu_session_options(threads or os.cpu_count() or 1)
        self.files = self._files(nets)
        self._pnet, self._rnet, self._onet = (self._load(self.files[n], options) for n in ("pnet", "rnet", "onet"))

    def _files(self, nets: str | dict[str, str]) -> dict[str, str]:
        """ONNX file name per net for a variant name or an explicit mapping."""
        stock = {name: f"{name}.onnx" for name in ("pnet", "rnet", "onet")}
        if isinstance(nets, dict):
            return {**stock, **nets}
        if nets == "stock":
            return stock
        if nets == "masked":
            masked = {n: f"{n}_masked.onnx" for n in stock if (self.model_dir / f"{n}_masked.onnx").is_file()}
            return {**stock, **masked}
        raise ValueError(f"unknown MTCNN nets {nets!r} (choose stock or masked, or pass a dict)")

    def _load(self, file_name: str, options: ort.SessionOptions) -> ort.InferenceSession:
        """One CPU session; a clear error beats onnxruntime's generic one."""
        path = self.model_dir / file_name
        if not path.is_file():
            raise FileNotFoundError(
                f"MTCNN model not found: {path} (create it with `python -m training export_mtcnn`)"
            )
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _normalize(rgb: np.ndarray) -> np.ndarray:
        """(x - 127.5) / 128 as float32, as the package feeds its nets."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {rgb.shape}")
        return (rgb.astype(np.float32) - np.float32(127.5)) * np.float32(1 / 128)

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None,
               min_face_size: int | None = None, levels: slice | None = None,
               known: list[tuple[float, float, float, float]] | None = None,
               fast_pyramid: bool = False) -> list[Detection]:
        """Faces in an RGB uint8 image, best score first, boxes clipped to the image.

        ``thresholds`` and ``min_face_size`` override the finder's own for this call only; ``levels``
        searches only those levels of the pyramid (0 is the finest, for the smallest faces), so a
        video can spread one search over several frames (``detector.finders.search``). PNet's
        proposals on a ``known`` face (IoU >= ``KNOWN_IOU``: one a video already follows) go no
        further: the search is for new faces, and RNet and ONet would only find that one again.
        ``fast_pyramid`` builds the pyramid as ``_pyramid`` says, for a video's search.
        """
        t_pnet, t_rnet, t_onet = thresholds or self.thresholds
        if min_face_size is not None and min_face_size < PNET_CELL:
            raise ValueError(f"min_face_size must be >= {PNET_CELL}, got {min_face_size}")
        image = self._normalize(rgb)
        boxes = self._stage_pnet(image, t_pnet, min_face_size, levels, fast_pyramid)
        if known and len(boxes):
            boxes = boxes[iou_matrix(boxes[:, :4], np.asarray(known, np.float64)).max(axis=1) < KNOWN_IOU]
        if len(boxes):
            boxes = self._stage_rnet(image, boxes, t_rnet)
        if len(boxes):
            boxes = self._run_onet(image, boxes)
            boxes = sort_by_score(boxes[boxes[:, 4] > t_onet])
            boxes = boxes[nms_keep(boxes, NMS_ONET, "min")]
        return [self._detection(row, rgb.shape) for row in boxes]

    def refine(
        self, rgb: np.ndarray, boxes: list[tuple[float, float, float, float]], min_score: float | None = None
    ) -> list[Detection | None]:
        """Re-locate known faces with ONet alone (about one ONet pass per box).

        Each box is squared and grown by ~10% so a face that moved a little is
        still inside the patch. None where ONet no longer sees a face (its score
        at most ``min_score``, by default the cascade's own ONet threshold).
        """
        bar = self.thresholds[2] if min_score is None else min_score
        if len(boxes) == 0:
            return []
        rows = np.zeros((len(boxes), 15))
        rows[:, :4] = square(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        centre = (rows[:, :2] + rows[:, 2:4]) / 2
        half = (rows[:, 2:3] - rows[:, 0:1]) * REFINE_EXPAND / 2
        rows[:, :2], rows[:, 2:4] = centre - half, centre + half
        refined = self._run_onet(self._normalize(rgb), rows)
        return [
            self._detection(row, rgb.shape) if row[4] > bar else None for row in refined
        ]

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """The face of a photo framed around one face, where PNet proposes nothing.

        A tight crop (eyebrows to chin, mask in the middle) is where PNet fails
        even with a border: its 12-pixel window never scores the masked face.
        A photo's subject is near its centre, so centred squares of a few sizes
        stand in for PNet's proposals; RNet and ONet judge them as usual, and
        only an ONet score of ``min_score`` (stricter than the cascade's own)
        makes a face. The best one is returned, or none.
        """
        h, w = rgb.shape[:2]
        short, pad = min(h, w), int(0.5 * max(h, w))
        grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rows = np.zeros((len(FRAMED_SIDES) * len(FRAMED_SHIFTS) ** 2, 15))  # RNet fills in the scores
        for i, (side, dx, dy) in enumerate(itertools.product(FRAMED_SIDES, FRAMED_SHIFTS, FRAMED_SHIFTS)):
            cx, cy, half = pad + w / 2 + dx * short, pad + h / 2 + 1.5 * dy * short, side * short / 2
            rows[i, :4] = (cx - half, cy - half, cx + half, cy + half)
        image = self._normalize(grown)
        boxes = self._stage_rnet(image, rows, self.thresholds[1])
        if not len(boxes):
            return []
        boxes = self._run_onet(image, boxes)
        best = boxes[boxes[:, 4].argmax()].copy()
        if best[4] < min_score:
            return []
        best[[0, 1, 2, 3]] -= pad
        best[5:] -= pad
        return [self._detection(best, rgb.shape)]

    def _stage_pnet(self, image: np.ndarray, threshold: float, min_face_size: int | None = None,
                    levels: slice | None = None, fast_pyramid: bool = False) -> np.ndarray:
        """Dense proposals over the pyramid (or ``levels`` of it), NMS per scale then across scales, squared."""
        height, width = image.shape[:2]
        found = []
        scales = pyramid_scales(height, width, min_face_size or self.min_face_size, self.scale_factor)
        for scale, level in self._pyramid(image, scales[levels] if levels is not None else scales, fast_pyramid):
            reg, prob = self._pnet.run(None, {"input": level[None]})
            boxes = self._pnet_boxes(reg[0], prob[0, :, :, 1], scale, threshold)
            found.append(boxes[nms_keep(boxes, NMS_PNET_SCALE)])
        if not found:
            return np.empty((0, 15))
        boxes = sort_by_score(np.concatenate(found))
        return square(boxes[nms_keep(boxes, NMS_PNET_ALL)])

    @staticmethod
    def _pyramid(image: np.ndarray, scales: list[float], fast: bool = False):
        """(scale, level) for each scale: the image area-resized, as the package does.

        An area resize costs about the same whatever the level's size: it reads the whole image. So
        ``fast`` resizes only the first (finest) level from the image and every other level from that
        one: a 640x480 pyramid at the video's 40 px floor takes ~1.2 ms instead of ~7 ms, a 720p one ~4
        instead of ~22. Its levels leave the package's by a little (but for rounding, not at all where the
        ratio of scales is whole); only PNet's proposals see them, as RNet and ONet sample the image itself.
        """
        height, width = image.shape[:2]
        first = None
        for scale in scales:
            size = (int(width * scale), int(height * scale))  # truncation, as tf.image.resize
            source = first if fast and first is not None else image
            level = cv2.resize(source, size, interpolation=cv2.INTER_AREA)  # == TF "area"
            first = level if first is None else first
            yield scale, level

    @staticmethod
    def _pnet_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
        """Turn PNet's map cells (stride 2, 12x12 window) into image-space boxes."""
        ys, xs = np.nonzero(prob > threshold)
        offsets = reg[ys, xs].astype(np.float64) * (PNET_CELL - 1)
        boxes = np.zeros((len(ys), 15))
        boxes[:, 0] = 2 * xs + 1 + offsets[:, 0]
        boxes[:, 1] = 2 * ys + 1 + offsets[:, 1]
        boxes[:, 2] = 2 * xs + PNET_CELL + offsets[:, 2]
        boxes[:, 3] = 2 * ys + PNET_CELL + offsets[:, 3]
        boxes[:, :4] /= scale
        boxes[:, 4] = prob[ys, xs]
        return sort_by_score(boxes)

    def _stage_rnet(self, image: np.ndarray, boxes: np.ndarray, threshold: float) -> np.ndarray:
        """Re-score and regress proposals on 24x24 patches; NMS; squared."""
        reg, prob = self._rnet.run(None, {"input": crop_resize(image, boxes, 24)})
        boxes = boxes.copy()
        boxes[:, 4] = prob[:, 1]
        boxes = regress(boxes, reg)
        boxes = sort_by_score(boxes[boxes[:, 4] > threshold])
        return square(boxes[nms_keep(boxes, NMS_RNET)])

    def _run_onet(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """ONet on 48x48 patches: score, regressed box and landmarks; no filtering."""
        reg, marks, prob = self._onet.run(None, {"input": crop_resize(image, boxes, 48)})
        out = boxes.copy()
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        out[:, 5:10] = w * marks[:, :5] + boxes[:, 0:1] - 1  # landmarks use the input box,
        out[:, 10:15] = h * marks[:, 5:] + boxes[:, 1:2] - 1  # before regression (as the package)
        out[:, 4] = prob[:, 1]
        return regress(out, reg)

    @staticmethod
    def _detection(row: np.ndarray, shape: tuple[int, ...]) -> Detection:
        """Clip the box to pixel indices [0, W-1] x [0, H-1] like the package does."""
        height, width = shape[:2]
        x1, x2 = np.clip(row[[0, 2]], 0, width - 1)
        y1, y2 = np.clip(row[[1, 3]], 0, height - 1)
        keypoints = np.stack([row[5:10], row[10:15]], axis=1).astype(np.float32)
        return Detection(
            box=(float(x1), float(y1), float(x2), float(y2)), score=float(row[4]), keypoints=keypoints
        )
