"""Face finders: where the faces of an image are, with MTCNN's five keypoints.

``make_finder`` gives the finder by name; the pipeline codes against the ``FaceFinder`` protocol
(``base``). ``mtcnn`` runs MTCNN's nets on onnxruntime (``cascade``: the package's box arithmetic),
``reference`` the ``mtcnn`` package on TensorFlow, ``yunet`` a second proposal source for video,
``search`` spreads a video's search over frames, and ``still`` searches a single photo harder.
"""

from __future__ import annotations

from detector.finders.base import FaceFinder, Filtered, FinderConfig
from detector.finders.still import apart, detect_grown, detect_still, detect_with_border, largest_still_face, unscaled

__all__ = ["FaceFinder", "FinderConfig", "apart", "detect_grown", "detect_still", "detect_with_border",
           "largest_still_face", "make_finder", "unscaled"]


def make_finder(backend: str = "onnx", config: FinderConfig | None = None) -> FaceFinder:
    """The face finder by name: ``onnx`` (default, fast) or ``reference`` (TensorFlow)."""
    config = config or FinderConfig()
    if backend == "reference":
        from detector.finders.reference import ReferenceMTCNN  # imports TensorFlow

        return ReferenceMTCNN(config)
    if backend == "onnx":
        from detector.finders.mtcnn import OnnxMTCNN

        return Filtered(
            OnnxMTCNN(config.model_dir, config.min_face_size, config.thresholds, nets=config.nets),
            config,
        )
    raise ValueError(f"unknown face finder {backend!r} (choose onnx or reference)")
