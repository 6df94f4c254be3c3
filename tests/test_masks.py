"""The mask painter and ``training.recipe.synth``: every state painted on bare faces, masks the photo cuts off left out,
and masks painted in place on the bare faces of a scene set."""

from __future__ import annotations

import json

import cv2
import numpy as np

from detector.synth.masks import mask_polygon


def test_synth_paints_a_scene_sets_bare_train_faces_in_place(portraits, astronaut_landmarks, tmp_path):
    """A scene set in: only its bare faces on photos the split puts in train are painted, in the
    photo itself; a face already masked is left as it was, and its crop keeps the painted state."""
    from training.recipe.crop import main as crop
    from training.recipe.synth import main as synth

    (x1, y1), (x2, y2) = astronaut_landmarks.min(axis=0), astronaut_landmarks.max(axis=0)
    width = portraits["none"].shape[1]
    scene = np.hstack([portraits["none"], portraits["worn"]])
    src = tmp_path / "scenes-x"
    (src / "images").mkdir(parents=True)
    faces = [{"box": [float(x1), float(y1), float(x2), float(y2)], "label": "no_mask"},
             {"box": [float(x1 + width), float(y1), float(x2 + width), float(y2)], "label": "mask"}]
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(src / "images" / name), scene, [cv2.IMWRITE_JPEG_QUALITY, 98])
    (src / "labels.json").write_text(json.dumps({"a.jpg": faces, "b.jpg": faces}))
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"scenes-x/a.jpg": "train", "scenes-x/b.jpg": "test"}))
    dst = tmp_path / "synth_scenes-x"
    assert synth([str(src), str(dst), "--splits", str(splits), "--states", "under_nose"]) == 0
    labels = json.loads((dst / "labels.json").read_text())
    assert list(labels) == ["a.jpg"], "the test-side photo is left alone"
    assert labels["a.jpg"] == [{"box": faces[0]["box"], "label": "incorrect", "state": "under_nose"}]
    before, after = cv2.imread(str(src / "images" / "a.jpg")), cv2.imread(str(dst / "images" / "a.jpg"))
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 40
    assert changed[:, :width].mean() > 0.01 and changed[:, width:].mean() < 0.001
    assert (dst / "contact_sheet.png").exists()
    assert crop([str(dst), str(tmp_path / "crops")]) == 0
    rows = (tmp_path / "crops" / "crops.csv").read_text().splitlines()
    assert len(rows) == 2 and ",incorrect,synth_scenes-x/a.jpg#0,synth_scenes-x/a.jpg,under_nose," in rows[1]


def test_synth_paints_every_state(portraits, tmp_path):
    from training.recipe.synth import main

    src = tmp_path / "bare"
    src.mkdir()
    cv2.imwrite(str(src / "a.jpg"), portraits["none"])
    cv2.imwrite(str(src / "empty.png"), np.full((100, 100, 3), 50, np.uint8))
    assert main([str(src), str(tmp_path / "out")]) == 0
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg"))
    assert made == ["incorrect/a__on_chin.jpg", "incorrect/a__under_nose.jpg", "mask/a__worn.jpg"]
    assert (tmp_path / "out" / "contact_sheet.png").exists()


def test_synth_leaves_out_masks_the_photo_cuts_off(portraits, astronaut_landmarks, tmp_path):
    """A photo cut between lip and chin gets a worn mask but no mask on the chin: most of it would be outside."""
    from training.recipe.synth import MIN_INSIDE, inside_share, main

    lip, chin = astronaut_landmarks[57, 1], astronaut_landmarks[8, 1]
    tight = portraits["none"][: int(lip + 0.6 * (chin - lip))]
    shares = {s: [inside_share(mask_polygon(astronaut_landmarks, s, drop), tight.shape) for drop in (0.05, 0.12, 0.2)]
              for s in ("worn", "on_chin")}  # the random styles' drops run from 0.05 to 0.2
    assert min(shares["worn"]) > MIN_INSIDE and max(shares["on_chin"]) < MIN_INSIDE - 0.2, shares
    assert inside_share(mask_polygon(astronaut_landmarks, "on_chin"), portraits["none"].shape) == 1.0
    src = tmp_path / "bare"
    src.mkdir()
    cv2.imwrite(str(src / "tight.jpg"), tight)
    assert main([str(src), str(tmp_path / "out"), "--states", "worn", "on_chin"]) == 0
    made = sorted(p.name for p in (tmp_path / "out").rglob("*.jpg"))
    assert made == ["tight__worn.jpg"], shares
    assert main([str(src), str(tmp_path / "all"), "--states", "on_chin", "--min-inside", "0"]) == 0
    assert [p.name for p in (tmp_path / "all").rglob("*.jpg")] == ["tight__on_chin.jpg"]
