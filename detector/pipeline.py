"""One frame in, labelled faces out: the stages chained together.

    faces (MTCNN) -> landmarks (dlib) -> aligned grayscale crop -> classifier
                                      -> nose / mouth patches -> visibility

``Pipeline.analyse`` judges one image on its own (uploads, photos, dataset
evaluation); ``VideoAnalyzer`` adds tracking, smoothing and the speed-ups that
only make sense on consecutive frames: full detection every few frames, ONet
following the known faces in between, and a track's verdict reused while it
is sure and recent (``benchmarks/README.md`` measures what each buys).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from detector.align import align_face, part_patches
from detector.classify import CLASSIFIER_PATH, PARTS_PATH, MaskClassifier, PartsModel
from detector.faces import FaceFinder, FinderConfig, detect_still, make_finder
from detector.landmarks import Landmarker
from detector.track import Tracker
from detector.types import LABELS, Detection, Face


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
    detect_every: int = 3
    """On video, run the full face finder every k frames and follow faces with ONet in between."""
    classify_every: int = 6
    """On video, classify a followed face at least every N frames; 1 classifies every face on every frame."""
    confident: float = 0.8
    """A track whose smoothed top probability is below this is classified on every frame."""

    @classmethod
    def reference(cls, **changes) -> PipelineConfig:
        """No shortcuts: the TensorFlow finder on every frame and every face classified on every frame."""
        return cls(**{"finder": "reference", "detect_every": 1, "classify_every": 1, **changes})


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
        self.timings: dict[str, float] | None = None

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
        """Face boxes in a BGR image; ``still`` retries photos with a border."""
        with self.timed("detect"):
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return detect_still(self.finder, rgb) if still else self.finder.detect(rgb)

    def analyse(self, image: np.ndarray, still: bool = True, detections: list[Detection] | None = None) -> list[Face]:
        """Every face in a BGR image with its label and visible parts (no tracking)."""
        if detections is None:
            detections = self.detect(image, still)
        faces = [Face(box=d.box, score=d.score) for d in detections]
        self.judge(image, faces)
        return faces

    def judge(self, image: np.ndarray, faces: list[Face]) -> None:
        """Landmarks, crop, label and visibility for faces whose boxes are known."""
        if not faces:
            return
        with self.timed("landmarks"):
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            crops, patches = [], []
            for face in faces:
                face.landmarks = self.landmarker(gray, face.box)
                crop, crop_landmarks = align_face(gray, face.landmarks)
                crops.append(crop)
                patches.append(part_patches(crop, crop_landmarks))
        with self.timed("classify"):
            probs = self.classifier.predict(crops)
            visible = self.parts.predict(patches)
        for face, p, v in zip(faces, probs, visible):
            face.probs = p
            best = int(np.argmax(p))
            face.label, face.label_score = LABELS[best], float(p[best])
            face.nose_visible, face.mouth_visible = bool(v[0] >= 0.5), bool(v[1] >= 0.5)


class VideoAnalyzer:
    """Consecutive frames of one source: tracking, smoothed verdicts and the video shortcuts.

    A face whose track holds a sure, recent verdict is not judged again: it
    keeps the track's label, and its ``probs`` and ``landmarks`` stay None
    on that frame (nothing downstream needs them; skipping the landmark fit
    is half the saving).
    """

    def __init__(self, pipeline: Pipeline, tracker: Tracker | None = None) -> None:
        self.pipeline = pipeline
        self.tracker = tracker or Tracker()
        self.frames = 0
        self.judged = 0
        """Faces the landmarker and classifier saw so far; the others reused their track's verdict."""

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self._detections(image)
        faces = [Face(box=d.box, score=d.score) for d in detections]
        due = self._due(faces)
        judged = [face for face, d in zip(faces, due) if d]
        self.pipeline.judge(image, judged)
        self.judged += len(judged)
        with self.pipeline.timed("track"):
            self.tracker.update(faces)
        self.frames += 1
        return faces

    def _detections(self, image: np.ndarray) -> list[Detection]:
        """Full detection every ``detect_every`` frames; in between, ONet follows known boxes."""
        k = max(1, self.pipeline.config.detect_every)
        refine = getattr(self.pipeline.finder, "refine", None)
        boxes = [t.box for t in self.tracker.tracks if t.missed == 0]
        if k == 1 or refine is None or self.frames % k == 0 or not boxes:
            return self.pipeline.detect(image)
        with self.pipeline.timed("follow"):
            rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            return [d for d in refine(rgb, boxes) if d is not None]

    def _due(self, faces: list[Face]) -> list[bool]:
        """Which faces to judge this frame: new ones, and tracks whose verdict is unsure or stale."""
        config = self.pipeline.config
        if config.classify_every <= 1:
            return [True] * len(faces)
        with self.pipeline.timed("track"):
            return [
                track is None or track.since_judged + 1 >= config.classify_every or track.probs.max() < config.confident
                for track in self.tracker.match(faces)
            ]
