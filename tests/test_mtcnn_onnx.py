"""OnnxMTCNN must match the ``mtcnn`` package it was exported from.

Inputs are generated here from scikit-image's public-domain sample photos
(``skimage.data.astronaut``); no image files are stored in the repo. Parity
tests need TensorFlow + ``mtcnn`` and are skipped without them; the rest run on
onnxruntime alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from detector.finders.cascade import pyramid_scales
from detector.finders.mtcnn import OnnxMTCNN

ROOT = Path(__file__).resolve().parent.parent

skimage_data = pytest.importorskip("skimage.data")

COLLAGE_LAYOUT = ((0, 0, 300), (320, 20, 200), (360, 260, 120))
"""(x, y, side) of each pasted astronaut: faces of roughly 50, 33 and 20 px."""


def iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def collage() -> np.ndarray:
    """A 640x480 camera-sized frame: the astronaut at three sizes on grey."""
    canvas = np.full((480, 640, 3), 128, np.uint8)
    for x, y, side in COLLAGE_LAYOUT:
        canvas[y:y + side, x:x + side] = cv2.resize(astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    return canvas


@pytest.fixture(scope="module")
def detector() -> OnnxMTCNN:
    return OnnxMTCNN()


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("tensorflow")
    mtcnn = pytest.importorskip("mtcnn")
    return mtcnn.MTCNN()


@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_net_parity(name: str) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("mtcnn")

    from training.recipe.export_mtcnn import NETS, build_keras_net

    model = build_keras_net(name)
    session = ort.InferenceSession(str(ROOT / "models" / "mtcnn" / f"{name}.onnx"),
                                   providers=["CPUExecutionProvider"])
    sizes = [(12, 12), (31, 47), (150, 113)] if name == "pnet" else [tuple(NETS[name][1][1:3])]
    rng = np.random.default_rng(1)
    for height, width in sizes:
        batch = rng.uniform(-1, 1, (4, height, width, 3)).astype(np.float32)
        expected = [np.asarray(t) for t in model(batch)]
        got = session.run(list(NETS[name][2]), {"input": batch})
        for exp, out in zip(expected, got):
            assert out.shape == exp.shape
            assert np.abs(out - exp).max() <= 1e-4


@pytest.mark.parametrize("make_image", [astronaut, collage], ids=["astronaut", "collage"])
def test_end_to_end_parity(detector: OnnxMTCNN, reference, make_image) -> None:
    image = make_image()
    expected = reference.detect_faces(image, box_format="xyxy")
    got = detector.detect(image)
    assert len(got) == len(expected) > 0
    assert [d.score for d in got] == sorted((d.score for d in got), reverse=True)
    for ref in expected:
        match = max(got, key=lambda d: iou(d.box, ref["box"]))
        assert iou(match.box, ref["box"]) >= 0.9
        assert np.abs(np.asarray(match.box) - ref["box"]).max() <= 2.0  # ref boxes are rounded
        assert abs(match.score - ref["confidence"]) <= 1e-3
        names = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        ref_points = np.asarray([ref["keypoints"][k] for k in names], dtype=np.float64)
        assert np.abs(match.keypoints - ref_points).max() <= 2.0


def test_collage_finds_all_three_faces(detector: OnnxMTCNN) -> None:
    faces = detector.detect(collage())
    assert len(faces) == 3
    for x, y, side in COLLAGE_LAYOUT:
        assert any(x <= f.box[0] and f.box[2] <= x + side and y <= f.box[1] <= y + side for f in faces)
    for face in faces:
        assert face.keypoints.shape == (5, 2)
        x1, y1, x2, y2 = face.box
        assert np.all((face.keypoints >= (x1, y1)) & (face.keypoints <= (x2, y2)))


@pytest.mark.parametrize("min_face_size", [12, 20, 27, 40, 80, 150])
@pytest.mark.parametrize("shape", [(480, 640), (512, 512), (37, 900)])
def test_pyramid_levels_stay_valid(min_face_size: int, shape: tuple[int, int]) -> None:
    scales = pyramid_scales(*shape, min_face_size, 0.709)
    if min(shape) < min_face_size:
        assert scales == []
        return
    assert scales[0] == pytest.approx(12 / min_face_size)
    assert min(shape) * scales[-1] >= 12
    assert min(shape) * scales[-1] * 0.709 < 12  # no usable level left out


def test_package_pyramid_is_kept_for_default(detector: OnnxMTCNN) -> None:
    # mtcnn.utils.images.build_scale_pyramid for a 640x480 frame, min_face_size=20.
    count = round(-((np.log(480 / 12) / np.log(0.709)) + 1))
    np.testing.assert_allclose(pyramid_scales(480, 640, 20, 0.709), 0.6 * 0.709 ** np.arange(count))


@pytest.mark.parametrize("min_face_size", [40, 80])
def test_larger_min_face_size_still_finds_the_face(min_face_size: int) -> None:
    truth = (182, 64, 265, 171)  # the package's box on astronaut(), face ~85x107 px
    faces = OnnxMTCNN(min_face_size=min_face_size).detect(astronaut())
    assert len(faces) == 1
    assert iou(faces[0].box, truth) >= 0.8


def test_refine_follows_shifted_face_and_rejects_background(detector: OnnxMTCNN) -> None:
    image = astronaut()
    truth = detector.detect(image)[0].box
    shifted = (truth[0] + 7, truth[1] - 5, truth[2] + 7, truth[3] - 5)
    plain = (20, 330, 160, 470)  # grey canvas in the collage
    refined = detector.refine(image, [shifted])
    assert refined[0] is not None and iou(refined[0].box, truth) >= 0.7
    assert refined[0].keypoints.shape == (5, 2)
    assert detector.refine(collage(), [plain]) == [None]
    assert detector.refine(image, []) == []


def test_nothing_found_on_blank_or_tiny_images(detector: OnnxMTCNN) -> None:
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((10, 10, 3), np.uint8)) == []


def test_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="pnet.onnx"):
        OnnxMTCNN(model_dir=tmp_path)


def test_finder_config_points_at_candidate_nets(tmp_path: Path) -> None:
    """``FinderConfig.model_dir`` is what a candidate refit is judged through: a copy of the
    shipped nets finds the same face, a folder without nets is refused by name."""
    import shutil

    from detector.finders import FinderConfig, make_finder
    from detector.finders.mtcnn import DEFAULT_MODEL_DIR

    for net in DEFAULT_MODEL_DIR.glob("*.onnx"):
        shutil.copy(net, tmp_path)
    shipped = make_finder("onnx", FinderConfig()).detect(astronaut())
    copied = make_finder("onnx", FinderConfig(model_dir=tmp_path)).detect(astronaut())
    assert len(shipped) == 1 and [d.box for d in copied] == [d.box for d in shipped]
    with pytest.raises(FileNotFoundError, match="pnet"):
        make_finder("onnx", FinderConfig(model_dir=tmp_path / "empty"))


def test_module_does_not_import_tensorflow() -> None:
    code = "import sys, detector.finders.mtcnn; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT).returncode == 0
