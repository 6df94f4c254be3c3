"""What every face finder is: the ``FaceFinder`` protocol the pipeline codes against, and the knobs they share.

MTCNN on onnxruntime (``detector.finders.mtcnn``) is the finder the detector ships; the ``mtcnn``
package on TensorFlow (``detector.finders.reference``) is the yardstick it is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from detector.types import Detection


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
    ``training.recipe.finetune_mtcnn``: more masked faces, fewer false ones) or ``stock``."""
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
    emblem in a 2x upscale. On val scene faces: 5 more found, none lost (docs/decisions.md)."""
    still_upscale: tuple[float, float, int] | None = (2.0, 0.9, 640)
    """A photo no larger than the third number (long side, px) is searched once more, grown by the
    first; a face of that search joins where it overlaps no face found and scores at least the
    second (None: off). A small photo's faces under the 20 px floor are found at 10 px this way,
    and the resampled photo gives PNet a second look at faces it missed (scene photos, docs/decisions.md:
    2 val and 3 test faces more found, none lost; held-out photo verdicts unchanged)."""
    still_framed: float | None = 0.9
    """Last resort for a photo still without a face: centred squares judged by RNet
    and ONet alone (``OnnxMTCNN.framed``), kept at this ONet score; None turns it off.
    Chosen on the val split: it found 7 of the 16 masked photos the borders missed,
    while no face-free crop or non-face sample scored above 0.63."""


class Filtered:
    """Drops detections under a final score, keeping the finder's other methods."""

    refines = True

    def __init__(self, finder, config: FinderConfig) -> None:
        self.finder, self.config, self.min_score = finder, config, config.min_score

    def detect(self, rgb: np.ndarray, thresholds: tuple[float, float, float] | None = None,
               levels: slice | None = None, known: list | None = None,
               fast_pyramid: bool = False) -> list[Detection]:
        found = self.finder.detect(rgb, thresholds, levels=levels, known=known, fast_pyramid=fast_pyramid)
        return [d for d in found if d.score >= self.min_score]

    def refine(self, rgb: np.ndarray, boxes: list, min_score: float | None = None) -> list[Detection | None]:
        return self.finder.refine(rgb, boxes, min_score)

    def framed(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        return [d for d in self.finder.framed(rgb, min_score) if d.score >= self.min_score]

    def detect_small(self, rgb: np.ndarray, min_face_size: int,
                     thresholds: tuple[float, float, float] | None = None) -> list[Detection]:
        return [d for d in self.finder.detect(rgb, thresholds, min_face_size) if d.score >= self.min_score]
