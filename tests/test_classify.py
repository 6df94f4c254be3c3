"""How the nose/mouth evidence tempers the classifier (detector.classify.combine)."""

from __future__ import annotations

import numpy as np
import pytest

from detector.classify import CHIN_SHARE, combine
from detector.types import LABELS

MASK, INCORRECT, BARE = (LABELS.index(name) for name in ("mask", "incorrect", "no_mask"))


def test_both_parts_visible_leans_bare_unless_the_classifier_sees_a_chin_mask():
    """A bare face the classifier half reads as a chin mask comes out bare; a clear chin mask stays incorrect."""
    visible = np.array([[1.0, 1.0], [1.0, 1.0]], np.float32)
    probs = np.array([[0.02, 0.55, 0.43], [0.02, 0.90, 0.08]], np.float32)
    even = combine(probs, visible, chin=0.5).argmax(axis=1)
    assert list(even) == [INCORRECT, INCORRECT], "an even split leaves the classifier's view as it is"
    fused = combine(probs, visible)
    assert CHIN_SHARE < 0.5
    assert list(fused.argmax(axis=1)) == [BARE, INCORRECT]
    assert np.allclose(fused.sum(axis=1), 1.0)


@pytest.mark.parametrize(("visible", "label"), [((0.0, 0.0), MASK), ((1.0, 0.0), INCORRECT), ((1.0, 1.0), BARE)])
def test_undecided_classifier_follows_the_parts(visible, label):
    """With no view of its own, the label is what the nose and mouth patches show."""
    fused = combine(np.full((1, 3), 1 / 3, np.float32), np.array([visible], np.float32))
    assert fused.argmax() == label


def test_chin_share_is_validated_on_the_command_line(tmp_path, capsys):
    from training.recipe.evaluate import main

    assert main([str(tmp_path), "--json", str(tmp_path / "out.json"), "--chin-share", "1.5"]) == 2
    assert "--chin-share must be between 0 and 1" in capsys.readouterr().err


def test_neck_evidence_moves_a_bare_looking_face_to_incorrect_and_never_to_mask():
    """A face showing nose and mouth with a mask under the chin is worn wrong; the neck model's
    word never makes a face `mask`, and where it was not asked (NaN) nothing changes."""
    visible = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
    probs = np.array([[0.30, 0.25, 0.45], [0.30, 0.25, 0.45], [0.80, 0.10, 0.10]], np.float32)
    plain = combine(probs, visible)
    assert list(plain.argmax(axis=1)) == [BARE, BARE, MASK]
    assert np.allclose(combine(probs, visible, neck=np.full(3, np.nan, np.float32)), plain)
    fused = combine(probs, visible, neck=np.array([0.97, 0.03, 0.97], np.float32))
    assert list(fused.argmax(axis=1)) == [INCORRECT, BARE, MASK]
    assert fused[1, INCORRECT] < plain[1, INCORRECT], "a bare neck makes a chin mask less likely"
    assert np.allclose(fused[2], plain[2], atol=1e-4), "a worn mask (nose and mouth covered) is left alone"
    assert (fused[:, MASK] / fused[:, BARE] <= plain[:, MASK] / plain[:, BARE] + 1e-6).all(), "never towards mask"


def test_neck_model_is_asked_only_where_the_neck_is_in_the_photo():
    from detector.align import NECK_SIZE
    from detector.classify import NECK_MIN_INSIDE, NeckModel

    patches = [np.full((NECK_SIZE, NECK_SIZE), v, np.uint8) for v in (40, 200)]
    said = NeckModel().predict(patches, [1.0, NECK_MIN_INSIDE - 0.01])
    assert 0.0 <= said[0] <= 1.0 and np.isnan(said[1])
    assert NeckModel().predict([], []).shape == (0,)


def test_neck_model_is_skipped_for_faces_whose_nose_or_mouth_is_covered(pipeline, portraits, astronaut_landmarks):
    """A worn mask or a mask under the nose costs no neck patch and no model call, and
    skipping it moves the fused verdict by less than the neck model at its most sure could."""
    import cv2

    from detector.align import alignment_matrix
    from detector.classify import NECK_MIN_SHOWING

    gray = cv2.cvtColor(portraits["on_chin"], cv2.COLOR_BGR2GRAY)
    matrix = alignment_matrix(astronaut_landmarks)
    visible = np.array([[0.99, 0.99], [0.99, 0.01], [0.01, 0.01]], np.float32)
    said = pipeline.ask_neck(gray, [matrix] * 3, visible)
    assert 0.0 <= said[0] <= 1.0 and np.isnan(said[1:]).all()
    assert pipeline.ask_neck(gray, [], np.zeros((0, 2), np.float32)).shape == (0,)

    edge = np.full((2, 2), np.sqrt(NECK_MIN_SHOWING) - 1e-4, np.float32)
    probs = np.array([[0.3, 0.4, 0.3]] * 2, np.float32)
    sure = combine(probs, edge, neck=np.array([0.999, 0.001], np.float32))
    unasked = combine(probs, edge, neck=np.full(2, np.nan, np.float32))
    assert np.abs(sure / unasked - 1).max() < 0.09


def test_neck_weight_is_validated_on_the_command_line(tmp_path, capsys):
    from training.recipe.evaluate import main

    assert main([str(tmp_path), "--json", str(tmp_path / "out.json"), "--neck-weight", "-1"]) == 2
    assert "--neck-weight must be between 0 and 10" in capsys.readouterr().err


def test_a_chin_outside_the_photo_moves_only_a_bare_looking_face_from_incorrect_to_no_mask():
    """Nose and mouth showing, the only way to be `incorrect` is a mask on the chin: where the photo
    ends above the chin that cannot be seen, so that share goes to `no_mask`. A mask under the nose
    (mouth covered) and a chin in the photo are left as they were; nothing ever moves towards `mask`."""
    visible = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], np.float32)
    probs = np.array([[0.01, 0.95, 0.04]] * 3 + [[0.90, 0.05, 0.05]], np.float32)
    plain = combine(probs, visible)
    unseen = np.array([1.0, 0.0, 1.0, 1.0], np.float32)
    fused = combine(probs, visible, chin_unseen=unseen)
    assert list(plain.argmax(axis=1)) == [INCORRECT, INCORRECT, INCORRECT, MASK]
    assert list(fused.argmax(axis=1)) == [BARE, INCORRECT, INCORRECT, MASK]
    assert np.allclose(fused[1:], plain[1:], atol=1e-6), "a seen chin or a covered mouth: unchanged"
    assert np.allclose(fused.sum(axis=1), 1.0)
    half = combine(probs[:1], visible[:1], chin_unseen=np.array([0.5], np.float32))
    assert plain[0, INCORRECT] > half[0, INCORRECT] > fused[0, INCORRECT], "as far as the chin is out of the photo"
    assert np.isclose(half[0, MASK], plain[0, MASK])


TIGHT_BARE = ["0_0_yaochen_0079.jpg", "1_0_baibaihe_0035.jpg", "1_0_anhu_0162.jpg"]
"""Bare faces of ``chandrika`` (validation side of models/splits.json) whose photo ends under the
mouth: the flat fill below the edge read as a mask on the chin until the chin's absence was weighed."""


@pytest.mark.parametrize("name", TIGHT_BARE)
def test_a_bare_photo_that_ends_under_the_mouth_is_no_mask(pipeline, name):
    from conftest import DATA

    from detector.sources import read_image
    from detector.types import largest

    path = DATA / "chandrika" / "without_mask" / name
    if not path.is_file():
        pytest.skip(f"{path} not found (see shared/data/README.md)")
    face = largest(pipeline.analyse(read_image(path)))
    assert face.nose_visible and face.mouth_visible
    assert face.label == "no_mask", face.probs
