"""Real-time face-mask detector: is a mask worn correctly, incorrectly, or not at all?

The flat API, for scripts::

    from detector import Pipeline
    faces = Pipeline().analyse(cv2.imread("photo.jpg"))
    for face in faces:
        print(face.box, face.label, face.label_score, face.nose_visible)
"""

from detector.types import LABELS, Detection, Face, Frame

__all__ = ["LABELS", "Detection", "Face", "Frame", "Pipeline"]


def __getattr__(name: str):
    # Lazy: importing the package must stay cheap (the CLI parses args first).
    if name == "Pipeline":
        from detector.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
