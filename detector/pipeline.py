"""One frame in, labelled faces out: the stages chained together.

    faces (MTCNN) -> landmarks (dlib) -> aligned grayscale crop -> classifier
                                      -> nose / mouth patches -> visibility

``Pipeline.analyse`` judges one image on its own (uploads, photos, dataset
evaluation); ``detector.video.VideoAnalyzer`` adds what only makes sense on
consecutive frames: tracking, a verdict per person, and the speed-ups.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.align import align_face, alignment_matrix, chin_unseen, neck_patch, part_patches
from detector.classify import (
    CHIN_SHARE,
    CLASSIFIER_PATH,
    FLOAT_PATHS,
    NECK_MIN_SHOWING,
    NECK_PATH,
    NECK_WEIGHT,
    PARTS_PATH,
    MaskClassifier,
    NeckModel,
    PartsModel,
    combine,
)
from detector.finders import FaceFinder, FinderConfig, detect_still, make_finder, unscaled
from detector.finders.search import SearchPlan
from detector.landmarks import Landmarker
from detector.quality import GOOD_QUALITY
from detector.quality import measure as measure_quality
from detector.types import LABELS, Detection, Face

Box = tuple[float, float, float, float]


VIDEO_MIN_FACE = 40
"""Smallest face sought on video and cameras by default, in pixels. At 640x480 a
typical 60-degree webcam shows a face 40 px wide at ~2 m; skipping the pyramid
levels for smaller faces halves detection time (benchmarks/README.md). Photos
keep FinderConfig's 20: they are searched once and may show a crowd."""


@dataclass
class PipelineConfig:
    """Which models to load and, for video, which shortcuts to take.

    The video defaults are the fast path ``python -m detector`` runs;
    ``PipelineConfig.reference()`` turns every shortcut off.
    """

    finder: str = "onnx"
    """Face finder backend: ``onnx`` (fast) or ``reference`` (the TensorFlow mtcnn package)."""
    faces: FinderConfig = field(default_factory=FinderConfig)
    classifier: str = str(CLASSIFIER_PATH)
    parts: str = str(PARTS_PATH)
    chin_share: float = CHIN_SHARE
    """Of faces showing nose and mouth, the share the visibility model gives to a chin mask."""
    neck: str = str(NECK_PATH)
    """The neck model (a mask below the chin); "" judges faces without it."""
    neck_weight: float = NECK_WEIGHT
    detect_every: int = 3
    """On video without a ``search`` plan, run the full face finder every k frames and follow faces with ONet
    in between."""
    search: SearchPlan | None = field(default_factory=SearchPlan)
    """On video, how new faces are looked for: one search spread over a cycle of frames, with YuNet beside
    MTCNN and still scenes skipped (``detector.finders.search``); known faces are followed by ONet on every frame.
    None: the whole search every ``detect_every`` frames."""
    refit_every: int = 3
    """On video, fit dlib's landmarks to a followed face every N frames; in between the
    last fit moves with the face box. 1 fits every face on every frame."""
    classify_every: int = 1
    """On video, classify a followed face at least every N frames and reuse its track's
    verdict in between; 1 (the default) classifies every face on every frame."""
    confident: float = 0.8
    """A track whose smoothed top probability is below this is refitted and classified on every frame."""
    confirm_frames: int = 2
    """On video, a face is shown once its track was seen in this many frames (1: at once). A box
    seen once, like a badge that one full detection took for a face and ONet let go of on the
    next frame, never shows; a real face shows one frame later. Faces in a stream's first
    frames show at once, so a clip or a one-frame source never starts empty."""
    search_side: int = 1920
    """A photo or frame larger than this is searched for faces on a copy scaled down to it;
    landmarks and crops still use every pixel. A 6000x6000 photo took 8 s and 4 GB searched
    whole, a 4K frame 0.3 s and 0.7 GB (``benchmarks/README.md``); 1080p and smaller are
    searched as they are, and on the copy of a 4K frame the video's 40 px floor is 80 px."""

    @classmethod
    def video(cls, min_face: int | None = None, **changes) -> PipelineConfig:
        """The defaults for video and cameras, wherever they run (the command line, each camera of
        the service): faces from ``min_face`` pixels (default ``VIDEO_MIN_FACE``)."""
        return cls(**{"faces": FinderConfig(min_face_size=min_face or VIDEO_MIN_FACE), **changes})

    @classmethod
    def photos(cls, min_face: int | None = None, **changes) -> PipelineConfig:
        """The defaults for single photos: faces from ``min_face`` pixels (default the finder's own 20),
        each photo searched with the still-photo search."""
        return cls(**{"faces": FinderConfig(**({"min_face_size": min_face} if min_face else {})), **changes})

    @classmethod
    def reference(cls, **changes) -> PipelineConfig:
        """No shortcuts: the TensorFlow finder on every frame and every face classified on every frame,
        by the float nets."""
        return cls(**{"finder": "reference", "detect_every": 1, "refit_every": 1, "classify_every": 1, "search": None,
                      **float_nets(), **changes})


def float_nets() -> dict[str, str]:
    """``PipelineConfig`` changes that run the exported float nets instead of their int8 copies."""
    return {field: str(path) for field, path in FLOAT_PATHS.items()}


class Pipeline:
    """The models, loaded once; ``analyse`` is safe to call for any image.

    Set ``timings`` to a dict to collect wall seconds per stage (``detect``,
    ``follow``, ``landmarks``, ``classify``, ``track``), summed over calls:
    a perf_counter pair per stage, cheap enough to leave on, unlike a profiler.
    """

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.finder: FaceFinder = make_finder(self.config.finder, self.config.faces)
        self.landmarker = Landmarker()
        self.classifier = MaskClassifier(self.config.classifier)
        self.parts = PartsModel(self.config.parts)
        self.neck = NeckModel(self.config.neck) if self.config.neck else None
        self.timings: dict[str, float] | None = None

    def with_faces(self, faces: FinderConfig) -> Pipeline:
        """This pipeline with another face-finder setting (a camera's own smallest face), sharing the
        loaded landmark, classifier, visibility and neck models: one more camera costs a finder, not a model set."""
        other = copy.copy(self)
        other.config = dataclasses.replace(self.config, faces=faces)
        other.finder = make_finder(other.config.finder, faces)
        return other

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the block's wall time to ``timings[stage]`` when timings are collected."""
        if self.timings is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start

    def detect(self, image: np.ndarray, still: bool = False) -> list[Detection]:
        """Face boxes in a BGR image, searched at most ``search_side`` large; ``still`` retries
        photos with a border."""
        with self.timed("detect"):
            rgb, scale = self.search_copy(image)
            return unscaled(detect_still(self.finder, rgb) if still else self.finder.detect(rgb), scale)

    def search_copy(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The RGB copy of a BGR image that faces are searched (and followed) on, at most
        ``search_side`` large, and the scale it was shrunk by (1.0: full size)."""
        small, scale = shrink_to(image, self.config.search_side)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB), scale

    def analyse(self, image: np.ndarray, still: bool = True) -> list[Face]:
        """Every face in a BGR image with its label and visible parts (no tracking); a face is
        ``settled`` when the photo shows it well enough to rest a verdict on (``GOOD_QUALITY``)."""
        faces = [Face(box=d.box, score=d.score) for d in self.detect(image, still)]
        self.judge(image, faces)
        for face in faces:
            face.settled = face.quality is not None and face.quality >= GOOD_QUALITY
        return faces

    def judge(self, image: np.ndarray, faces: list[Face]) -> None:
        """Landmarks, crop, label and visibility for faces whose boxes are known.

        Landmarks are fitted where a face has none yet (``VideoAnalyzer`` passes
        a recent fit moved with the box instead: the dlib fit is most of the per-face cost).
        """
        if not faces:
            return
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        with self.timed("landmarks"):
            for face in faces:
                if face.landmarks is None:
                    face.landmarks = self.landmarker(gray, face.box)
        with self.timed("classify"):
            crops, patches, matrices, unseen = [], [], [], []
            for face in faces:
                matrices.append(alignment_matrix(face.landmarks))
                crop, crop_landmarks = align_face(gray, face.landmarks, matrix=matrices[-1])
                crops.append(crop)
                patches.append(part_patches(crop, crop_landmarks))
                unseen.append(chin_unseen(gray.shape, matrices[-1]))
                face.quality = measure_quality(face.box, face.landmarks, matrices[-1], crop, crop_landmarks).value
            visible = self.parts.predict(patches)
            neck = self.ask_neck(gray, matrices, visible) if self.neck else None
            probs = combine(self.classifier.predict(crops), visible, chin=self.config.chin_share,
                            neck=neck, neck_weight=self.config.neck_weight, chin_unseen=np.array(unseen))
        for face, p, v in zip(faces, probs, visible):
            face.probs = p
            best = int(np.argmax(p))
            face.label, face.label_score = LABELS[best], float(p[best])
            face.nose_visible, face.mouth_visible = bool(v[0] >= 0.5), bool(v[1] >= 0.5)

    def ask_neck(self, gray: np.ndarray, matrices: list[np.ndarray], visible: np.ndarray) -> np.ndarray:
        """P(a mask under the chin) for the faces showing nose and mouth; NaN (counts for
        nothing in ``combine``) for the rest, which skip the patch and the model call."""
        out = np.full(len(matrices), np.nan, np.float32)
        asked = np.flatnonzero(visible[:, 0] * visible[:, 1] >= NECK_MIN_SHOWING)
        if asked.size:
            patches, inside = zip(*(neck_patch(gray, matrices[i]) for i in asked))
            out[asked] = self.neck.predict(list(patches), list(inside))
        return out


def analyse_frame(pipeline: Pipeline, image: np.ndarray, analyzer: Callable[[np.ndarray], list[Face]] | None) -> list[Face]:
    """One frame's faces: a photo judged on its own (``analyzer`` None), a video frame through its tracker."""
    return pipeline.analyse(image, still=True) if analyzer is None else analyzer(image)


def shrink_to(image: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The image scaled down so its longest side is at most ``side``, and the scale applied (1.0: untouched)."""
    h, w = image.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale
