"""Verdicts are smoothed over time: one true change comes through once, noise does not."""

from __future__ import annotations

import numpy as np
from conftest import frames_of

from detector.track import Tracker, iou_matrix
from detector.types import LABELS, Face


def noisy_faces(rng: np.random.Generator, true_labels: list[str], flip_every: int = 4) -> list[Face]:
    """One face drifting across frames whose classifier is wrong every few frames."""
    faces = []
    for i, label in enumerate(true_labels):
        probs = np.full(3, 0.1)
        wrong = i % flip_every == flip_every - 1
        probs[LABELS.index(label) if not wrong else rng.integers(3)] = 0.8
        probs = probs / probs.sum()
        x = 100 + 2 * i
        faces.append(Face(box=(x, 80, x + 90, 190), probs=probs, label=LABELS[int(probs.argmax())]))
    return faces


def labels_over_time(tracker: Tracker, faces: list[Face]) -> list[str]:
    out = []
    for face in faces:
        tracker.update([face])
        out.append(face.label)
    return out


def changes(labels: list[str]) -> int:
    return sum(a != b for a, b in zip(labels, labels[1:]))


def test_one_true_change_gives_one_change():
    truth = ["mask"] * 30 + ["no_mask"] * 30
    faces = noisy_faces(np.random.default_rng(0), truth)
    raw = [f.label for f in faces]
    smoothed = labels_over_time(Tracker(), faces)
    assert changes(raw) > 5, "the raw labels flicker"
    assert changes(smoothed) == 1
    switch = smoothed.index("no_mask")
    assert 30 <= switch <= 36, "the real change comes through within a few frames"
    assert len({f.track for f in faces}) == 1


def test_two_faces_keep_their_tracks():
    tracker = Tracker()
    left = Face(box=(10, 10, 60, 60), probs=np.array([0.9, 0.05, 0.05]))
    right = Face(box=(200, 10, 250, 60), probs=np.array([0.05, 0.05, 0.9]))
    tracker.update([left, right])
    ids = (left.track, right.track)
    for step in range(5):
        left = Face(box=(12 + step, 10, 62 + step, 60), probs=np.array([0.9, 0.05, 0.05]))
        right = Face(box=(198 - step, 10, 248 - step, 60), probs=np.array([0.05, 0.05, 0.9]))
        tracker.update([right, left])  # order must not matter
        assert (left.track, right.track) == ids
        assert (left.label, right.label) == ("mask", "no_mask")


def test_lost_track_is_forgotten():
    tracker = Tracker(max_missed=2)
    tracker.update([Face(box=(0, 0, 10, 10), probs=np.array([1.0, 0, 0]))])
    for _ in range(4):
        tracker.update([])
    assert tracker.tracks == []


def test_iou_matrix():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], float)
    assert np.allclose(iou_matrix(a, b), [[1.0, 1 / 3, 0.0]])


def test_real_clip_with_one_change(pipeline, astronaut_landmarks, tmp_path):
    """The real pipeline on a clip where a mask comes off once: one label change on one track."""
    from detector.synth.demo import build_demo_clip
    from detector.video import VideoAnalyzer

    clip = build_demo_clip(tmp_path / "change.mp4", astronaut_landmarks, frames_per_state=20,
                           sequence=(("worn", None), ("none", None)))
    analyzer = VideoAnalyzer(pipeline)
    labels, tracks = [], set()
    for image in frames_of(clip):
        faces = analyzer(image)
        assert len(faces) == 1
        labels.append(faces[0].label)
        tracks.add(faces[0].track)
    assert len(labels) == 40 and len(tracks) == 1
    assert labels[0] == "mask" and labels[-1] == "no_mask"
    assert changes(labels) == 1
