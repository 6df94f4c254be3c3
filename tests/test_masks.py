"""The mask painter and ``training.synth``: every state painted on bare faces, masks the photo cuts off left out,
real cloth, the neck state (a mask pulled down under the chin, for the neck model) and masks painted in place on
the bare faces of a scene set."""

from __future__ import annotations

import json

import cv2
import numpy as np

from detector.align import CROP_SIZE, NECK_REGION, alignment_matrix
from detector.synth.masks import NECK_STATE, STATE_LABEL, STATES, MaskStyle, mask_polygon, neck_band, paint_mask


def _rotated(points: np.ndarray, degrees: float, centre: np.ndarray) -> np.ndarray:
    turn = cv2.getRotationMatrix2D(tuple(float(v) for v in centre), degrees, 1.0)
    return (points - centre) @ turn[:, :2].T + centre


def test_neck_band_hangs_under_the_chin_and_tilts_with_the_head(astronaut_landmarks):
    lm = astronaut_landmarks
    face_h = float(np.linalg.norm(lm[8] - lm[27]))
    band = neck_band(lm, drop=0.12).astype(float)
    assert band.shape == (7, 2)
    assert band[:, 1].min() > lm[8, 1], "a band that starts at the chin's tip or below leaves the face bare"
    assert band[:, 1].max() > lm[8, 1] + 0.35 * face_h, "it hangs down the neck"
    assert lm[4, 0] < band[:, 0].min() and band[:, 0].max() < lm[12, 0], "no wider than the jaw"
    assert mask_polygon(lm, NECK_STATE, 0.12).tolist() == band.astype(int).tolist()
    assert STATE_LABEL[NECK_STATE] == "incorrect" and NECK_STATE not in STATES, "the classifier's states stay three"

    turned = _rotated(lm, 25, lm[27])
    tilted = neck_band(turned, drop=0.12).astype(float)
    np.testing.assert_allclose(tilted.mean(axis=0), _rotated(band.mean(axis=0, keepdims=True), 25, lm[27])[0], atol=3)


def test_neck_band_lies_in_the_neck_models_patch(astronaut_landmarks):
    """The neck model reads ``NECK_REGION`` of the aligned face: the painting must land there, for any drop."""
    matrix = alignment_matrix(astronaut_landmarks)
    x1, y1, x2, y2 = (v * CROP_SIZE for v in NECK_REGION)
    for drop in (0.05, 0.12, 0.2):
        band = neck_band(astronaut_landmarks, drop).astype(np.float32)
        inside = cv2.transform(band[None], matrix)[0]
        assert (inside[:, 0] > x1).all() and (inside[:, 0] < x2).all(), drop
        assert (inside[:, 1] > y1).all() and (inside[:, 1] < y2).all(), drop


def test_painting_the_neck_leaves_the_face_alone(portraits, astronaut_landmarks):
    bare = portraits["none"]
    red = MaskStyle(colour=(30, 30, 200), pattern="plain", loops=False)  # ear loops cross the cheeks
    painted = paint_mask(bare, astronaut_landmarks, NECK_STATE, red)
    above_chin = slice(0, int(astronaut_landmarks[8, 1]) - 2)
    assert np.array_equal(painted[above_chin], bare[above_chin]), "mouth and chin still show"
    inside = np.zeros(bare.shape[:2], np.uint8)
    cv2.fillPoly(inside, [neck_band(astronaut_landmarks, 0.12)], 1)
    b, g, r = np.median(painted[cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0], axis=0)
    assert r > 150 and max(b, g) < 80, (b, g, r)


def test_synth_paints_the_neck_only_on_request(portraits, tmp_path):
    from training.synth import main

    src = tmp_path / "bare"
    src.mkdir()
    cv2.imwrite(str(src / "a.jpg"), portraits["none"])
    assert main([str(src), str(tmp_path / "out"), "--states", NECK_STATE]) == 0
    assert [p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")] == \
        ["incorrect/a__on_neck.jpg"]


def test_synth_paints_a_scene_sets_bare_train_faces_in_place(portraits, astronaut_landmarks, tmp_path):
    """A scene set in: only its bare faces on photos the split puts in train are painted, in the
    photo itself; a face already masked is left as it was, and its crop keeps the painted state."""
    from training.crop import main as crop
    from training.synth import main as synth

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
    from training.synth import main

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
    from detector.synth.masks import mask_polygon
    from training.synth import MIN_INSIDE, inside_share, main

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


def test_synth_dresses_masks_in_real_cloth(portraits, astronaut_landmarks, tmp_path):
    """``--cloth``: the cloth of a worn mask in a labelled folder (a red one, a colour the painter
    never picks) is cut by landmarks and worn under the nose and on the chin of a bare face."""
    from detector.synth.masks import mask_polygon
    from training.synth import cloth_swatch, main

    red = MaskStyle(colour=(30, 30, 200), pattern="plain", shade=0.0, loops=False)
    worn = paint_mask(portraits["none"], astronaut_landmarks, "worn", red)
    swatch = cloth_swatch(worn, astronaut_landmarks)
    assert swatch is not None and np.abs(np.median(swatch.reshape(-1, 3), axis=0) - (30, 30, 200)).max() < 20
    assert cloth_swatch(worn[: int(astronaut_landmarks[57, 1])], astronaut_landmarks) is None, "cut off: no swatch"
    (tmp_path / "masked" / "with_mask").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "masked" / "with_mask" / "red.png"), worn)
    (tmp_path / "bare").mkdir()
    cv2.imwrite(str(tmp_path / "bare" / "a.png"), portraits["none"])
    args = [str(tmp_path / "bare"), str(tmp_path / "out"), "--cloth", str(tmp_path / "masked"), "--cloth-share", "1"]
    assert main(args) == 0
    for state in ("under_nose", "on_chin"):
        out = cv2.imread(str(tmp_path / "out" / "incorrect" / f"a__{state}.jpg"))
        inside = np.zeros(out.shape[:2], np.uint8)
        cv2.fillPoly(inside, [mask_polygon(astronaut_landmarks, state, 0.05)], 1)
        b, g, r = np.median(out[cv2.erode(inside, np.ones((9, 9), np.uint8)) > 0], axis=0)
        assert r > 130 and max(b, g) < 90, (state, b, g, r)
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"masked/with_mask/red.png": "test"}))
    assert main([args[0], str(tmp_path / "out2"), *args[2:], "--cloth-splits", str(splits)]) == 2, \
        "a held-out photo lends no cloth, and with none left the tool says so"
    assert main([args[0], str(tmp_path / "out3"), "--cloth", str(splits)]) == 2, "a file is no labelled folder"
