"""One frame in, labelled faces out: the stages chained together.

    faces (MTCNN) -> landmarks (dlib) -> aligned grayscale crop -> classifier
                                      -> nose / mouth patches -> visibility

``Pipeline.analyse`` judges one image on its own (uploads, photos, dataset
evaluation); ``VideoAnalyzer`` adds tracking, smoothing and the speed-ups that
only make sense on consecutive frames.
"""

from __future__ import annotations

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
    finder: str = "onnx"
    """Face finder backend: ``onnx`` (fast) or ``reference`` (the TensorFlow mtcnn package)."""
    faces: FinderConfig = field(default_factory=FinderConfig)
    classifier: str = str(CLASSIFIER_PATH)
    parts: str = str(PARTS_PATH)
    detect_every: int = 1
    """On video, run the full face finder every k frames and follow faces in between."""


class Pipeline:
    """The models, loaded once; ``analyse`` is safe to call for any image."""

    def __init__(self, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.finder: FaceFinder = make_finder(self.config.finder, self.config.faces)
        self.landmarker = Landmarker()
        self.classifier = MaskClassifier(self.config.classifier)
        self.parts = PartsModel(self.config.parts)

    def detect(self, image: np.ndarray, still: bool = False) -> list[Detection]:
        """Face boxes in a BGR image; ``still`` retries photos with a border."""
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
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        crops, patches = [], []
        for face in faces:
            face.landmarks = self.landmarker(gray, face.box)
            crop, crop_landmarks = align_face(gray, face.landmarks)
            crops.append(crop)
            patches.append(part_patches(crop, crop_landmarks))
        probs = self.classifier.predict(crops)
        visible = self.parts.predict(patches)
        for face, p, v in zip(faces, probs, visible):
            face.probs = p
            best = int(np.argmax(p))
            face.label, face.label_score = LABELS[best], float(p[best])
            face.nose_visible, face.mouth_visible = bool(v[0] >= 0.5), bool(v[1] >= 0.5)


class VideoAnalyzer:
    """Consecutive frames of one source: tracking and smoothed verdicts."""

    def __init__(self, pipeline: Pipeline, tracker: Tracker | None = None) -> None:
        self.pipeline = pipeline
        self.tracker = tracker or Tracker()
        self.frames = 0

    def __call__(self, image: np.ndarray) -> list[Face]:
        detections = self._detections(image)
        faces = self.pipeline.analyse(image, still=False, detections=detections)
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
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return [d for d in refine(rgb, boxes) if d is not None]
