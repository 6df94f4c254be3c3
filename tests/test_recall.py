"""Masked faces are found, non-faces are not.

The data test measures held-out masked-photo recall with the detector's own
still-photo path (``training.tools.recall``); it needs ``../shared/data``. The core
tests need nothing but scikit-image's bundled samples: a painted mask on the
astronaut must not hide her face, and face-free samples must stay face-free.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import DATA, ROOT

from detector.finders import FinderConfig, detect_still
from training.lib.finder_photos import NONFACE_SAMPLES

RECALL_TARGET = 0.97
"""The project issue's goal, held here on a fixed sample of the test side of ``models/splits.json``
(the classifier's split, whose train side alone the masked nets were refit on). Measured 0.989
(176/178) on this sample with the masked nets, two border retries and the framed last resort:
a 3-photo margin. The split file names photos relative to the datasets root, so the sample is the
same in every clone."""
BARE_FLOOR = 0.975
"""Measured 0.992 (119/120) on this sample's bare photos; a 2-photo margin."""
SAMPLE_PER_FOLDER = 60
"""Photos per folder in the data test: enough to see a regression, under a minute."""

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def finder(pipeline):
    """The suite's pipeline's finder: the detector's defaults (ONNX nets, masked heads)."""
    return pipeline.finder


@pytest.fixture(scope="module")
def held_out_recall(finder) -> tuple[float, float, dict]:
    """Masked and bare recall of the still path on a fixed sample of held-out (test split) photos."""
    if not DATA.is_dir():
        pytest.skip(f"datasets not found at {DATA} (see shared/data/README.md)")
    from training.lib.finder_photos import load_eval_set
    from training.lib.splits import read_held
    from training.tools.recall import still_recall

    held = read_held(ROOT / "models" / "splits.json")
    data = load_eval_set(DATA, "test", limit=SAMPLE_PER_FOLDER, held=held)
    results = still_recall(finder, finder.config, data.stills, still=True)
    rate = lambda labels: (sum(results[f"label:{k}"]["found"] for k in labels)
                           / sum(results[f"label:{k}"]["total"] for k in labels))
    return rate(("mask", "incorrect")), rate(("no_mask",)), results


@pytest.mark.data
@pytest.mark.slow
def test_held_out_masked_recall_floor(held_out_recall) -> None:
    """The issue's target, on held-out photos (models/README.md has the whole split)."""
    masked, _, results = held_out_recall
    assert masked >= RECALL_TARGET, results


@pytest.mark.data
@pytest.mark.slow
def test_held_out_bare_recall_floor(held_out_recall) -> None:
    """Refitting on masked faces must not cost bare faces."""
    _, bare, results = held_out_recall
    assert bare >= BARE_FLOOR, results


@pytest.mark.parametrize("name", [n for n in NONFACE_SAMPLES if n != "coins"])
def test_no_face_in_non_face_samples(finder, name: str) -> None:
    """Photos without people: the still path (with its border retries) reports nothing.

    Not ``coins``: one of its Greek coins bears a frontal head, and a face finder that boxes it
    is right (``training.tools.recall`` still counts it, as the one non-face sample with a face)."""
    image = np.asarray(getattr(skimage_data, name)())
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image[..., :3].copy()
    assert detect_still(finder, rgb) == []


@pytest.fixture(scope="module")
def masked_astronaut(portraits, astronaut_landmarks) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's astronaut with a mask painted over nose and mouth (RGB), and her bare face's landmarks."""
    return cv2.cvtColor(portraits["worn"], cv2.COLOR_BGR2RGB), astronaut_landmarks


@pytest.mark.parametrize("margin", [0.0, 0.1])
def test_framed_finds_tight_masked_crop(finder, masked_astronaut, margin: float) -> None:
    """The last resort for photos: centred squares judged by RNet and ONet find an eyebrows-to-chin
    crop of a masked face, with a box around the crop's middle."""
    masked, lm = masked_astronaut
    pad = margin * (lm[16, 0] - lm[0, 0])
    crop = np.ascontiguousarray(masked[int(lm[19, 1] - pad):int(lm[8, 1] + pad), int(lm[0, 0] - pad):int(lm[16, 0] + pad)])
    found = finder.framed(crop, FinderConfig().still_framed)
    assert len(found) == 1 and found[0].score >= FinderConfig().still_framed
    x1, y1, x2, y2 = found[0].box
    h, w = crop.shape[:2]
    assert x1 < w / 2 < x2 and y1 < h / 2 < y2


@pytest.mark.parametrize("name", ["coffee", "chelsea", "page", "retina", "checkerboard", "colorwheel"])
def test_framed_rejects_non_faces(finder, name: str) -> None:
    """The same squares on photos without a face: nothing reaches the still path's ONet bar."""
    image = np.asarray(getattr(skimage_data, name)())
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])
    assert finder.framed(rgb, FinderConfig().still_framed) == []


def test_astronaut_found_with_painted_mask(finder, masked_astronaut) -> None:
    """A mask over nose and mouth (painted on dlib landmarks) must not hide the face."""
    masked, _ = masked_astronaut
    rgb = skimage_data.astronaut()
    assert not np.array_equal(masked, rgb)
    found = detect_still(finder, masked)
    assert found
    x1, y1, x2, y2 = finder.detect(rgb)[0].box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert any(d.box[0] <= cx <= d.box[2] and d.box[1] <= cy <= d.box[3] for d in found)


def test_held_split_draws_the_line_where_the_classifier_did(tmp_path) -> None:
    """``--splits``: a finder refit (train side) and the recall figures (test side) use the photos the
    classifier's ``splits.json`` puts there, named as ``training.recipe.evaluate`` names them; a photo it
    does not name goes by ``stable_split`` of its group, as in ``training.recipe.evaluate``."""
    import json

    from training.lib.finder_photos import STILL_FOLDERS, load_eval_set
    from training.lib.splits import stable_split

    blank = np.full((64, 64, 3), 128, np.uint8)
    for folder in STILL_FOLDERS:
        (tmp_path / folder).mkdir(parents=True)
        for name in ("a", "b"):
            cv2.imwrite(str(tmp_path / folder / f"{name}.jpg"), blank)
    (tmp_path / "scenes-ilc2021" / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "scenes-ilc2021" / "images" / "s.jpg"), blank)
    boxes = [{"box": [1, 1, 30, 30], "label": "mask"}]
    (tmp_path / "scenes-ilc2021" / "labels.json").write_text(json.dumps({"s.jpg": boxes}))
    held = {"chandrika/with_mask/a.jpg": "test", "scenes-ilc2021/s.jpg": "test", "prajnasb/without_mask/a.jpg": "val"}
    test = load_eval_set(tmp_path, "test", held=held)
    names = {p.relative_to(tmp_path).as_posix() for _, _, p in test.stills}
    assert "chandrika/with_mask/a.jpg" in names and "prajnasb/without_mask/a.jpg" not in names
    assert [p.name for p, _ in test.scenes] == ["s.jpg"]
    unnamed = {f"{folder}/b.jpg" for folder in STILL_FOLDERS if stable_split(f"{folder.split('/')[0]}/b") == "test"}
    assert unnamed <= names and not any(n.endswith("b.jpg") for n in names - unnamed)
    train = load_eval_set(tmp_path, "train", held=held)
    assert "chandrika/with_mask/a.jpg" not in {p.relative_to(tmp_path).as_posix() for _, _, p in train.stills}
    # a second scene set (the refit's --scenes) is split photo by photo the same way, each set on its own names
    (tmp_path / "crowds-adityap27" / "images").mkdir(parents=True)
    for name in ("s.jpg", "t.jpg"):
        cv2.imwrite(str(tmp_path / "crowds-adityap27" / "images" / name), blank)
    (tmp_path / "crowds-adityap27" / "labels.json").write_text(json.dumps({"s.jpg": boxes, "t.jpg": boxes}))
    held["crowds-adityap27/t.jpg"] = "train"
    sides = {side: {p.relative_to(tmp_path).as_posix() for p, _ in
                    load_eval_set(tmp_path, side, held=held, scene_sets=("scenes-ilc2021", "crowds-adityap27")).scenes}
             for side in ("train", "val", "test")}
    assert "crowds-adityap27/images/t.jpg" in sides["train"] and "scenes-ilc2021/images/s.jpg" in sides["test"]
    crowd_s = stable_split("crowds-adityap27/s.jpg")
    assert "crowds-adityap27/images/s.jpg" in sides[crowd_s], "a crowd photo the file does not name: by its own group"
    assert sum(len(v) for v in sides.values()) == 3


@pytest.mark.data
def test_finder_refit_smoke_on_a_few_train_photos(tmp_path) -> None:
    """The refit runs from train photos to checked ONNX nets, softened copies included,
    and what it writes loads as a finder that still finds the astronaut's face."""
    if not DATA.is_dir():
        pytest.skip(f"datasets not found at {DATA} (see shared/data/README.md)")
    import shutil

    from detector.finders import make_finder
    from training.recipe.finetune_mtcnn import main as finetune

    for net in (ROOT / "models" / "mtcnn").glob("*.onnx"):
        shutil.copy(net, tmp_path)
    args = ["--data", str(DATA), "--splits", str(ROOT / "models" / "splits.json"), "--limit", "3",
            "--soft", "1", "--epochs", "1", "--nets", "pnet", "rnet", "--out", str(tmp_path)]
    assert finetune(args) == 0, "export parity within tolerance"
    assert (tmp_path / "rnet_masked.onnx").read_bytes() != (ROOT / "models/mtcnn/rnet_masked.onnx").read_bytes()
    found = make_finder("onnx", FinderConfig(model_dir=tmp_path)).detect(skimage_data.astronaut())
    assert len(found) == 1


def test_finer_search_only_adds_faces_apart_from_those_found() -> None:
    """``still_small_faces``: a photo's finer search adds a confident face that overlaps none found
    and nothing else: a weak one, or a second box on a face already found, never joins."""
    from detector.types import Detection

    found = Detection((100.0, 100.0, 200.0, 200.0), 0.99, None)
    small = [Detection((102.0, 98.0, 198.0, 204.0), 0.99, None),  # the same face, boxed again
             Detection((10.0, 10.0, 24.0, 24.0), 0.95, None),  # a small face elsewhere
             Detection((300.0, 10.0, 314.0, 24.0), 0.85, None)]  # too weak for a second-chance search

    class Finder:  # a FaceFinder that declares the finer search
        refines = True

        def __init__(self) -> None:
            self.calls: list[int] = []

        def detect(self, rgb, thresholds=None):
            return [found] if rgb.any() else []

        def detect_small(self, rgb, min_face_size, thresholds=None):
            self.calls.append(min_face_size)
            return small

    config = FinderConfig(still_small_faces=(14, 0.9), still_borders=(), still_framed=None, still_upscale=None)
    finder = Finder()
    faces = detect_still(finder, np.ones((400, 400, 3), np.uint8), config)
    assert [d.box for d in faces] == [found.box, small[1].box] and finder.calls == [14]
    assert detect_still(finder, np.zeros((400, 400, 3), np.uint8), config) == [] and finder.calls == [14], \
        "a photo with no face found is left to the border retries, not searched finer"
    off = FinderConfig(still_small_faces=None, still_borders=(), still_framed=None, still_upscale=None)
    assert detect_still(finder, np.ones((400, 400, 3), np.uint8), off) == [found]


def test_finer_search_leaves_a_portrait_as_it_was(pipeline, portraits) -> None:
    """On a one-face photo the finer search changes nothing: same face, same box."""
    from detector.finders import make_finder

    rgb = cv2.cvtColor(portraits["none"], cv2.COLOR_BGR2RGB)
    on = detect_still(pipeline.finder, rgb)
    off = detect_still(make_finder("onnx", FinderConfig(still_small_faces=None)), rgb)
    assert len(on) == 1 and [d.box for d in on] == [d.box for d in off]


def test_a_small_photo_is_searched_enlarged_for_a_face_under_the_floor() -> None:
    """``still_upscale``: a 320x240 photo whose one face is 8 px wide (the astronaut shrunk to
    48 px) has nothing the 1x search, the borders or the framed squares box; its enlarged
    copy finds the face, boxed where it is. A photo over the size limit is not enlarged."""
    from detector.finders import make_finder
    from detector.track import iou_matrix

    canvas = np.full((240, 320, 3), 128, np.uint8)
    canvas[100:148, 150:198] = cv2.resize(skimage_data.astronaut(), (48, 48), interpolation=cv2.INTER_AREA)
    expected = np.array([[150 + 182 * 48 / 512, 100 + 65 * 48 / 512, 150 + 266 * 48 / 512, 100 + 173 * 48 / 512]])

    assert detect_still(make_finder("onnx", FinderConfig(still_upscale=None)), canvas) == []
    found = detect_still(make_finder("onnx", FinderConfig()), canvas)
    assert len(found) == 1 and iou_matrix(np.array([found[0].box]), expected)[0, 0] > 0.5
    too_big = FinderConfig(still_upscale=(2.0, 0.9, 300))
    assert detect_still(make_finder("onnx", too_big), canvas) == []
