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
    from training.evaluate import main

    assert main([str(tmp_path), "--json", str(tmp_path / "out.json"), "--chin-share", "1.5"]) == 2
    assert "--chin-share must be between 0 and 1" in capsys.readouterr().err
