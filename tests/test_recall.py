"""Masked faces are found, non-faces are not.

The data test measures held-out masked-photo recall with the detector's own
still-photo path (``training.recall``); it needs ``../shared/data``. The core
tests need nothing but scikit-image's bundled samples: a painted mask on the
astronaut must not hide her face, and face-free samples must stay face-free.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.faces import FinderConfig, detect_still, make_finder

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RECALL_TARGET = 0.97
"""The project issue's goal on the whole held-out split (see models/README.md for what is reached)."""
RECALL_FLOOR = 0.96
"""Measured 0.972 (173/178) on this sample with the masked nets and two border retries; a
2-photo margin. The sample is drawn from the split keyed by paths relative to the datasets
root, so it is the same in every clone (it used to depend on where the data lived)."""
BARE_FLOOR = 0.94
"""Measured 0.958 (115/120) on this sample's bare photos; a 2-photo margin."""
SAMPLE_PER_FOLDER = 60
"""Photos per folder in the data test: enough to see a regression, under a minute."""

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def finder():
    return make_finder("onnx", FinderConfig())


@pytest.fixture(scope="module")
def held_out_recall(finder) -> tuple[float, float, dict]:
    """Masked and bare recall of the still path on a fixed sample of held-out (test split) photos."""
    if not DATA.is_dir():
        pytest.skip(f"datasets not found at {DATA} (see shared/data/README.md)")
    from training.recall import load_eval_set, still_recall

    data = load_eval_set(DATA, "test", limit=SAMPLE_PER_FOLDER)
    results = still_recall(finder, finder.config, data.stills, still=True)
    rate = lambda labels: (sum(results[f"label:{k}"]["found"] for k in labels)
                           / sum(results[f"label:{k}"]["total"] for k in labels))
    return rate(("mask", "incorrect")), rate(("no_mask",)), results


@pytest.mark.data
@pytest.mark.slow
def test_held_out_masked_recall_floor(held_out_recall) -> None:
    """What is reached today must not slip back (the project's target is RECALL_TARGET)."""
    masked, _, results = held_out_recall
    assert masked >= RECALL_FLOOR, results


@pytest.mark.data
@pytest.mark.slow
def test_held_out_bare_recall_floor(held_out_recall) -> None:
    """Refitting on masked faces must not cost bare faces."""
    _, bare, results = held_out_recall
    assert bare >= BARE_FLOOR, results


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "brick", "grass", "gravel",
                                  "hubble_deep_field", "immunohistochemistry", "coins"])
def test_no_face_in_non_face_samples(finder, name: str) -> None:
    """Photos without people: the still path (with its border retries) reports nothing."""
    image = np.asarray(getattr(skimage_data, name)())
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3].copy()
    assert detect_still(finder, rgb) == []


def test_astronaut_found_with_painted_mask(finder) -> None:
    """A mask over nose and mouth (painted on dlib landmarks) must not hide the face."""
    from detector.landmarks import Landmarker
    from detector.masks import paint_mask

    rgb = skimage_data.astronaut()
    faces = finder.detect(rgb)
    assert faces, "the bare astronaut must be found first"
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    landmarks = Landmarker()(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), faces[0].box)
    masked = cv2.cvtColor(paint_mask(bgr, landmarks, "worn"), cv2.COLOR_BGR2RGB)
    assert not np.array_equal(masked, rgb)
    found = detect_still(finder, masked)
    assert found
    x1, y1, x2, y2 = faces[0].box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert any(d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3] for d in found)
