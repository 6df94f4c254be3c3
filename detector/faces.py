"""Finding faces: MTCNN boxes and five keypoints.

Two interchangeable finders with one ``detect(rgb) -> list[Detection]`` method:
``OnnxMTCNN`` (the package's own networks exported to ONNX, run by
onnxruntime: fast, no TensorFlow) and ``ReferenceMTCNN`` (the ``mtcnn`` package
itself, on TensorFlow: slow, kept as the yardstick the fast one is checked
against).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from detector.track import iou_matrix
from detector.types import Detection, largest


class FaceFinder(Protocol):
    """What the pipeline asks of a face finder. ``refines`` says whether the last three work: MTCNN's own nets
    can re-judge a box with ONet (following a face on video), search a finer pyramid and centred squares;
    the reference package can only ``detect``, so video then runs its full search every few frames."""

    config: FinderConfig
    refines: bool

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        """Faces in an RGB image; ``thresholds`` (per stage) overrides the finder's own for this call."""
        ...

    def refine(self, rgb: np.ndarray, boxes: list, min_score: float | None = None) -> list[Detection | None]:
        """Each box re-judged by ONet: the face it holds, or None."""
        ...

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        """Centred squares judged by ONet: the face of a photo framed around one."""
        ...

    def detect_small(self, rgb: np.ndarray, min_face_size: int,
                     thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        """A search down to ``min_face_size`` pixels, below the finder's own floor."""
        ...


@dataclass
class FinderConfig:
    """Knobs shared by both finders.

    The default thresholds are lower than the package's (0.6, 0.7, 0.8): a
    mask hides the nose and mouth MTCNN was trained on, and at the package's
    defaults it misses a large share of masked faces.
    """

    min_face_size: int = 20
    thresholds: tuple[float, float, float] = (0.6, 0.6, 0.7)
    min_score: float = 0.8
    """Final score a face must reach to be reported at all."""
    nets: str = "masked"
    """Which ONNX nets OnnxMTCNN loads: ``masked`` (face heads refit on masked faces by
    ``training.finetune_mtcnn``: more masked faces, fewer false ones) or ``stock``."""
    model_dir: Path | None = None
    """Folder of the ONNX nets (None: the shipped ``models/mtcnn``); a candidate refit is
    judged through the whole detector by pointing here, without touching the shipped files."""
    still_thresholds: tuple[float, float, float] | None = None
    """Per-stage thresholds for single photos (None: same as ``thresholds``).
    A photo is searched once, so it can afford more proposals than a video frame."""
    still_borders: tuple[tuple[float, str], ...] = ((0.25, "replicate"), (0.5, "replicate"))
    """Retries for a photo where nothing was found: (border fraction, fill) tried in
    order, fill ``replicate`` or ``mean`` (constant mean colour). Tight crops
    (eyes to chin) need room around the face before MTCNN sees one. A third,
    100% border found 2 more of 256 val masked photos with the dense-refit nets,
    and a face on scikit-image's coins."""
    still_small_faces: tuple[int, float] | None = (14, 0.9)
    """On a photo where faces were found, a second search down to faces this small (px); its
    boxes join the list only where they overlap no face already found and score at least the
    second number (None: off). Crowd photos hold faces under the 20 px floor, and searching
    every photo that fine changed the boxes of faces already found, so the finer search only
    adds. Its bar is the framed last resort's: at 0.8 it also boxed the astronaut's badge
    emblem in a 2x upscale. On val scene faces: 5 more found, none lost (models/HISTORY.md)."""
    still_upscale: tuple[float, float, int] | None = (2.0, 0.9, 640)
    """A photo no larger than the third number (long side, px) is searched once more, grown by the
    first; a face of that search joins where it overlaps no face found and scores at least the
    second (None: off). A small photo's faces under the 20 px floor are found at 10 px this way,
    and the resampled photo gives PNet a second look at faces it missed (scene photos, models/HISTORY.md:
    2 val and 3 test faces more found, none lost; held-out photo verdicts unchanged)."""
    still_framed: float | None = 0.9
    """Last resort for a photo still without a face: centred squares judged by RNet
    and ONet alone (``OnnxMTCNN.framed``), kept at this ONet score; None turns it off.
    Chosen on the val split: it found 7 of the 16 masked photos the borders missed,
    while no face-free crop or non-face sample scored above 0.63."""


class ReferenceMTCNN:
    """The ``mtcnn`` package as published (TensorFlow): ``detect`` only."""

    refines = False

    def __init__(self, config: FinderConfig | None = None) -> None:
        try:
            from mtcnn import MTCNN  # heavy: imports TensorFlow
        except ImportError:  # the detector itself installs without TensorFlow
            raise ImportError("the reference finder needs TensorFlow and mtcnn: "
                              "pip install 'mask-detector[train]' (or pip install -e '.[train]' in a checkout)") from None

        self.config = config or FinderConfig()
        self._mtcnn = MTCNN()

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        t1, t2, t3 = thresholds or self.config.thresholds
        found = self._mtcnn.detect_faces(
            rgb, box_format="xyxy", threshold_pnet=t1, threshold_rnet=t2, threshold_onet=t3
        )
        out = []
        for f in found or []:
            kp = f["keypoints"]
            points = np.array(
                [kp[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")],
                dtype=np.float32,
            )
            if f["confidence"] >= self.config.min_score:
                out.append(Detection(tuple(float(v) for v in f["box"]), float(f["confidence"]), points))
        return out

    def refine(self, rgb: np.ndarray, boxes: list, min_score: float | None = None) -> list[Detection | None]:
        raise NotImplementedError("the reference finder cannot refine a box (refines is False)")

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        raise NotImplementedError("the reference finder cannot search framed squares (refines is False)")

    def detect_small(self, rgb: np.ndarray, min_face_size: int,
                     thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        raise NotImplementedError("the reference finder searches from its own floor only (refines is False)")


def make_finder(backend: str = "onnx", config: FinderConfig | None = None) -> FaceFinder:
    """The face finder by name: ``onnx`` (default, fast) or ``reference`` (TensorFlow)."""
    config = config or FinderConfig()
    if backend == "reference":
        return ReferenceMTCNN(config)
    if backend == "onnx":
        from detector.mtcnn_onnx import OnnxMTCNN

        return _Filtered(
            OnnxMTCNN(config.model_dir, config.min_face_size, config.thresholds, nets=config.nets),
            config,
        )
    raise ValueError(f"unknown face finder {backend!r} (choose onnx or reference)")


class _Filtered:
    """Drops detections under a final score, keeping the finder's other methods."""

    refines = True

    def __init__(self, finder, config: FinderConfig) -> None:
        self.finder, self.config, self.min_score = finder, config, config.min_score

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None,
               levels: slice | None = None) -> list[Detection]:
        return [d for d in self.finder.detect(rgb, thresholds, levels=levels) if d.score >= self.min_score]

    def refine(self, rgb: np.ndarray, boxes: list, min_score: float | None = None) -> list[Detection | None]:
        return self.finder.refine(rgb, boxes, min_score)

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        return [d for d in self.finder.framed(rgb, min_score) if d.score >= self.min_score]

    def detect_small(self, rgb: np.ndarray, min_face_size: int,
                     thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        return [d for d in self.finder.detect(rgb, thresholds, min_face_size) if d.score >= self.min_score]


def detect_with_border(
    finder: FaceFinder, rgb: np.ndarray, border: float = 0.25, fill: str = "replicate",
    thresholds: tuple[float, float, float] | None = None,
) -> list[Detection]:
    """Detect on the image grown by a border, boxes mapped back.

    Tight face crops (the usual dataset photo) leave MTCNN no context around
    the face; a border lets its pyramid see a whole face at a size it knows.
    ``replicate`` continues the edges (hair, clothes); ``mean`` is a flat
    canvas of the image's mean colour, i.e. the photo shrunk onto a backdrop.
    """
    h, w = rgb.shape[:2]
    pad = int(round(border * max(h, w)))
    if pad == 0:
        return finder.detect(rgb, thresholds)
    if fill == "mean":
        colour = [float(c) for c in rgb.reshape(-1, 3).mean(axis=0)]
        grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour)
    elif fill == "replicate":
        grown = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    else:
        raise ValueError(f"unknown border fill {fill!r} (choose replicate or mean)")
    out = []
    for d in finder.detect(grown, thresholds):
        x1, y1, x2, y2 = (v - pad for v in d.box)
        box = (max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h)))
        if box[2] - box[0] < 4 or box[3] - box[1] < 4:
            continue
        kps = None if d.keypoints is None else d.keypoints - pad
        out.append(Detection(box, d.score, kps))
    return out


def apart(new: list[Detection], found: list[Detection], max_iou: float = 0.3) -> list[Detection]:
    """The detections of ``new`` that overlap none of ``found`` (IoU below ``max_iou``)."""
    if not new or not found:
        return list(new)
    overlap = iou_matrix(np.array([d.box for d in new], float), np.array([d.box for d in found], float))
    return [d for d, o in zip(new, overlap.max(axis=1)) if o < max_iou]


def detect_still(finder: FaceFinder, rgb: np.ndarray, config: FinderConfig | None = None) -> list[Detection]:
    """Faces in a single photo: as is first (plus, where faces were found, smaller ones a finer
    search adds: ``FinderConfig.still_small_faces``), then each border retry until one finds a
    face, then (where the finder can) centred squares for a photo framed around one face; last,
    a small photo's faces that only its enlarged copy shows (``FinderConfig.still_upscale``).

    ``config`` defaults to the finder's own.
    """
    config = config or finder.config
    found = finder.detect(rgb, config.still_thresholds)
    if found and config.still_small_faces and finder.refines:
        min_face, min_score = config.still_small_faces
        small = finder.detect_small(rgb, min_face, config.still_thresholds)
        found = found + apart([d for d in small if d.score >= min_score], found)
    for border, fill in config.still_borders:
        if found:
            break
        found = detect_with_border(finder, rgb, border, fill, config.still_thresholds)
    if not found and config.still_framed is not None and finder.refines:
        found = finder.framed(rgb, config.still_framed)
    if config.still_upscale and max(rgb.shape[:2]) <= config.still_upscale[2]:
        factor, min_score, _ = config.still_upscale
        grown = detect_grown(finder, rgb, factor, config.still_thresholds)
        found = found + apart([d for d in grown if d.score >= min_score], found)
    return found


def detect_grown(finder: FaceFinder, rgb: np.ndarray, factor: float,
                 thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
    """Detect on the image enlarged by ``factor``, boxes and keypoints mapped back: faces under
    the finder's smallest window become big enough for it."""
    grown = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    return unscaled(finder.detect(grown, thresholds), factor)


def unscaled(found: list[Detection], scale: float) -> list[Detection]:
    """Detections made on a copy resized by ``scale``, with box and keypoints back in the original image's pixels."""
    if scale == 1.0:
        return found
    return [Detection(tuple(v / scale for v in d.box), d.score, None if d.keypoints is None else d.keypoints / scale)
            for d in found]


def largest_still_face(finder: FaceFinder, bgr: np.ndarray) -> Detection | None:
    """The largest face of a BGR photo by the still-photo search, or None: the face a labelled
    photo is about, the one ``training`` crops and paints a mask on."""
    found = detect_still(finder, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return largest(found) if found else None
