"""The real-time shortcuts keep their promises (behaviour only: timings live in benchmarks/fps.py).

* the fast path never imports TensorFlow (nor scipy.optimize, ~0.7 s of start-up);
* frames between full detections still give every face a box, a track and a label;
* the benchmark's agreement measure counts what it says on a tiny synthetic case;
* a live source drops stale frames, a file source drops none;
* a large photo is searched on a smaller copy, and answered in its own pixels.
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest
from conftest import ROOT, count_frames, frames_of

from detector.live import LatestFrameReader
from detector.pipeline import PipelineConfig
from detector.sources import open_source
from detector.track import assign
from detector.video import VideoAnalyzer, carry_landmarks


def load_benchmark():
    """benchmarks/fps.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fps_benchmark", ROOT / "benchmarks" / "fps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module




def test_fast_path_never_imports_tensorflow(demo_clip, tmp_path):
    code = (
        "import sys\n"
        "from detector.cli import main\n"
        f"rc = main(['--source', {str(demo_clip)!r}, '--no-window', '--json', {str(tmp_path / 'out.jsonl')!r}, '--quiet'])\n"
        "print(rc, 'tensorflow' in sys.modules, 'mtcnn' in sys.modules, 'scipy.optimize' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rc, tensorflow, mtcnn, scipy_optimize = result.stdout.split()
    assert rc == "0", result.stderr
    assert (tensorflow, mtcnn) == ("False", "False"), "TensorFlow costs seconds of start-up: keep it off the fast path"
    assert scipy_optimize == "False", "faces that do not overlap are matched without scipy (start-up)"


def test_cli_defaults_are_the_fast_config():
    from detector.cli import build_parser, pipeline_config

    args = build_parser().parse_args([])
    video, photos = pipeline_config(args, video=True), pipeline_config(args, video=False)
    assert video.faces.min_face_size == 40 and photos.faces.min_face_size == 20
    assert video.detect_every > 1 and video.refit_every > 1
    reference = PipelineConfig.reference()
    assert (reference.finder, reference.detect_every, reference.refit_every, reference.classify_every) == ("reference", 1, 1, 1)


def test_followed_frames_still_give_labelled_faces(pipeline, demo_clip):
    """Between full detections ONet follows the faces and carried landmarks still feed the classifier."""
    fast = copy.copy(pipeline)  # same models, own config and timings
    fast.config, fast.timings = replace(pipeline.config, detect_every=3, refit_every=3, classify_every=1), {}
    analyzer, with_two, total = VideoAnalyzer(fast), 0, 0
    for image in frames_of(demo_clip):
        faces = analyzer(image)
        with_two, total = with_two + (len(faces) == 2), total + len(faces)
        for face in faces:
            assert face.label is not None and face.track is not None and face.probs is not None
            assert face.landmarks is not None and face.landmarks.shape == (68, 2)
    assert with_two >= 0.9 * analyzer.frames, "the demo shows two faces in every frame"
    assert fast.timings["follow"] > 0 and fast.timings["detect"] > 0
    assert analyzer.classified == total, "every face is classified on every frame"
    assert analyzer.fitted < 0.7 * analyzer.classified, "landmarks are carried between refits"


def test_reused_verdicts_keep_their_label(pipeline, demo_clip):
    """With classify_every > 1 a sure track's verdict is reused: the face keeps a label without new probs."""
    fast = copy.copy(pipeline)
    fast.config = replace(pipeline.config, detect_every=3, classify_every=4)
    analyzer = VideoAnalyzer(fast)
    reused = 0
    for image in frames_of(demo_clip)[:24]:
        for face in analyzer(image):
            assert face.label is not None and face.track is not None
            reused += face.probs is None
    assert reused > 0 and analyzer.classified < 2 * analyzer.frames


def test_carry_landmarks_moves_with_the_box():
    points = np.array([[10, 10], [20, 30]], np.float32)
    moved = carry_landmarks(points, (0, 0, 40, 40), (100, 50, 180, 130))  # shifted, twice the size
    assert np.allclose(moved, [[120, 70], [140, 110]])


def test_assign_pairs_each_box_once():
    iou = np.array([[0.9, 0.0], [0.0, 0.6]])
    assert assign(iou, 0.25) == [(0, 0), (1, 1)]
    contested = np.array([[0.6, 0.5], [0.55, 0.0]])  # greedy would take (0, 0) and leave row 1 alone
    assert sorted(assign(contested, 0.25)) == [(0, 1), (1, 0)]
    assert assign(np.array([[0.2]]), 0.25) == []


def test_agreement_counts_matched_faces_with_the_same_label():
    agreement = load_benchmark().agreement
    a, b = (10.0, 10.0, 50.0, 50.0), (100.0, 10.0, 140.0, 50.0)
    near_a, far = (12.0, 11.0, 52.0, 51.0), (300.0, 300.0, 340.0, 340.0)
    reference = [[(a, "mask"), (b, "no_mask")], [(a, "mask")]]
    assert agreement(reference, [[(near_a, "mask"), (b, "no_mask")], [(a, "mask")]]) == (1.0, 1.0)
    found, agree = agreement(reference, [[(near_a, "mask"), (b, "incorrect")], [(far, "mask")]])
    assert found == pytest.approx(2 / 3) and agree == pytest.approx(1 / 3)
    assert agreement([[]], [[(a, "mask")]]) == (1.0, 1.0), "extra fast faces are not counted"


class FastCamera:
    """A capture that makes a new numbered frame every millisecond, like a camera outpacing the pipeline."""

    def __init__(self) -> None:
        self.count = 0

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return True

    def read(self) -> tuple[bool, np.ndarray]:
        time.sleep(0.001)
        self.count += 1
        return True, np.full((2, 2, 3), self.count, np.int64)

    def release(self) -> None:
        pass


def test_live_source_drops_stale_frames_and_files_drop_none(demo_clip):
    camera = FastCamera()
    reader = LatestFrameReader(lambda: camera, "fake camera", delays=())
    reader.start()
    try:
        seen = []
        for _ in range(5):
            frame = reader.latest(timeout=1.0)
            assert frame is not None
            seen.append(int(frame[0, 0, 0]))
            time.sleep(0.03)  # a slow pipeline
    finally:
        reader.stop()
        reader.join(timeout=2)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] - seen[0] > 2 * (len(seen) - 1), "frames that went stale while busy are skipped"
    assert not any(t.name == reader.name and t.is_alive() for t in threading.enumerate())
    indices = [frame.index for frame in open_source(str(demo_clip))]
    assert indices == list(range(count_frames(demo_clip))), "a file is read frame by frame, none dropped"


def largest(found: list) -> object:
    """The biggest box of a list of faces or detections (the subject of a portrait)."""
    assert found, "no face found"
    return max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))


def test_large_photo_is_searched_small_and_answered_in_its_pixels(pipeline, portraits, monkeypatch):
    """Past ``search_side`` a photo's faces are found on a scaled copy (a 6000 px photo searched whole
    took 8 s and 4 GB): boxes, keypoints and the landmark fit come back in the photo's own pixels."""
    small = portraits["none"]
    big = cv2.resize(small, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    searched = []
    finder_detect = pipeline.finder.detect
    monkeypatch.setattr(pipeline.finder, "detect", lambda rgb, t=None: searched.append(rgb.shape) or finder_detect(rgb, t))
    (near,) = pipeline.detect(small, still=True)
    far = largest(pipeline.detect(big, still=True))  # 5x up, the finder also boxes her badge's emblem (model card)
    assert max(searched[-1][:2]) == pipeline.config.search_side < max(big.shape)
    side = near.box[3] - near.box[1]  # a scale slip would be off by a factor, not a few percent
    assert np.allclose(np.array(far.box) / 5, near.box, atol=0.05 * side)
    assert np.allclose(far.keypoints / 5, near.keypoints, atol=0.05 * side)
    face = largest(pipeline.analyse(big))
    (face_small,) = pipeline.analyse(small)
    assert face.label == face_small.label == "no_mask"
    assert np.abs(face.landmarks / 5 - face_small.landmarks).mean() < 2


def test_large_video_frames_are_searched_and_followed_on_a_copy(pipeline, portraits, monkeypatch):
    """A 4K frame is searched (and its faces followed by ONet) on a ``search_side`` copy, 4x faster
    on 4K video (benchmarks/README.md); the tracked face comes back in the frame's own pixels."""
    small = portraits["none"]
    big = cv2.resize(small, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    seen = []
    for name in ("detect", "refine"):
        method = getattr(pipeline.finder, name)
        monkeypatch.setattr(pipeline.finder, name,
                            lambda rgb, *a, _m=method, **k: seen.append(rgb.shape) or _m(rgb, *a, **k))
    analyzer = VideoAnalyzer(pipeline)
    (near,) = VideoAnalyzer(pipeline)(small)
    seen.clear()
    faces = [analyzer(big) for _ in range(3)]
    assert len(seen) >= 3 and all(max(shape[:2]) == pipeline.config.search_side for shape in seen)
    for found in faces:
        face = largest(found)
        assert np.allclose(np.array(face.box) / 5, near.box, atol=0.05 * (near.box[3] - near.box[1]))
        assert face.label == near.label == "no_mask"


def test_a_face_seen_in_one_frame_only_never_shows(pipeline, portraits):
    """Video confirmation: a box one full detection found and the next frame lost (a badge taken for a
    face) is not shown; a face that stays shows from its second frame, and from the first in a
    stream's opening frames."""
    def frame(*columns: int) -> np.ndarray:
        canvas = np.full((480, 640, 3), 200, np.uint8)
        for x in columns:
            canvas[10:470, x : x + 300] = cv2.resize(portraits["none"], (300, 460))
        return canvas

    blank, left, middle, right = frame(), frame(10), frame(170), frame(330)
    clip = [left, blank, blank, blank, blank, middle, blank, blank, blank, *[right] * 6]
    counts = {}
    for confirm in (1, 2):
        config = copy.copy(pipeline)
        config.config = replace(pipeline.config, confirm_frames=confirm, search=None)  # the whole search each frame
        analyzer = VideoAnalyzer(config)
        counts[confirm] = [len(analyzer(image)) for image in clip]
    assert counts[1][:9] == [1, 0, 0, 0, 0, 1, 0, 0, 0] and counts[1][9:] == [1] * 6, counts
    assert counts[2][:10] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] and counts[2][10:] == [1] * 5, counts
    config = copy.copy(pipeline)
    config.config = replace(pipeline.config, confirm_frames=2)  # the default plan: one part of the search a frame
    analyzer = VideoAnalyzer(config)
    spread = [len(analyzer(image)) for image in clip]
    assert spread[0] == 1 and spread[5] == 0, spread  # the stream's first frame shows at once; a flash never
    assert spread[-3:] == [1, 1, 1], "a face that stays is found within a cycle and shown"


def test_photo_benchmark_times_each_variant_on_a_folder(portraits, tmp_path):
    """benchmarks/photos.py runs every variant over the same photos and counts their faces: one
    portrait and a face-free grey photo give one face each; a folder that is not there is a
    one-line error."""
    import json

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "portrait.jpg"), portraits["worn"])
    cv2.imwrite(str(photos / "grey.png"), np.full((240, 320, 3), 128, np.uint8))
    out = tmp_path / "photos.json"
    script = str(ROOT / "benchmarks" / "photos.py")
    run = subprocess.run([sys.executable, script, "--source", str(photos), "--json", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert set(result) == {"shipped", "no enlarged copy", "no finer search", "neither"}
    assert all(r["photos"] == 2 and r["faces"] == 1 and r["mean_ms"] > 0 for r in result.values())
    bad = subprocess.run([sys.executable, script, "--source", str(tmp_path / "missing")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "not a folder" in bad.stderr
