"""On video, one search spread over a cycle of frames: every face is found within a cycle, a still scene is not
searched on every frame, and YuNet's proposals count only once ONet agrees. Real nets, inputs made here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detector.finders.mtcnn import KNOWN_IOU
from detector.finders.search import Searcher, SearchPlan
from detector.finders.yunet import YuNet
from detector.track import iou_matrix

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def video_finder():
    """The finder as video runs it: a 40 px floor (``detector.pipeline.VIDEO_MIN_FACE``)."""
    from detector.finders import FinderConfig, make_finder
    from detector.pipeline import VIDEO_MIN_FACE

    return make_finder("onnx", FinderConfig(min_face_size=VIDEO_MIN_FACE))


class Counting:
    """The real finder, with its searches counted."""

    def __init__(self, finder) -> None:
        self.finder, self.calls = finder, 0

    def detect(self, rgb, thresholds=None, levels=None, known=None, fast_pyramid=False):
        self.calls += 1
        return self.finder.detect(rgb, thresholds, levels=levels, known=known, fast_pyramid=fast_pyramid)

    def refine(self, rgb, boxes, min_score=None):
        return self.finder.refine(rgb, boxes, min_score)


def in_frame(image: np.ndarray, size=(1280, 720)) -> np.ndarray:
    """An RGB portrait placed in a grey 720p frame (faces about 150 px)."""
    canvas = np.full((size[1], size[0], 3), 110, np.uint8)
    canvas[100:612, 384:896] = image
    return canvas


def test_every_part_of_the_search_finds_its_faces_within_a_cycle(video_finder, portraits):
    rgb = in_frame(cv2.cvtColor(portraits["worn"], cv2.COLOR_BGR2RGB))
    searcher = Searcher(video_finder, SearchPlan(motion=None), fps=15)
    first = searcher(rgb, [])
    assert len(first) == 1, "a stream's first frame searches the coarse levels: a near face is found at once"
    cycle = [searcher(rgb, []) for _ in range(searcher.plan.every - 1)]
    assert any(len(found) == 1 for found in cycle), "YuNet, verified by ONet, finds her too"
    assert all(searcher(rgb, first) == [] for _ in range(3)), "a face already followed is not found again"


def test_the_search_leaves_a_followed_face_after_pnet_and_still_finds_the_new_one(video_finder, portraits, monkeypatch):
    rgb = np.full((720, 1280, 3), 110, np.uint8)
    for x, state in ((200, "worn"), (700, "none")):
        rgb[200:500, x:x + 300] = cv2.cvtColor(cv2.resize(portraits[state], (300, 300)), cv2.COLOR_BGR2RGB)
    mtcnn, rescored = video_finder.finder, []
    stage_rnet = mtcnn._stage_rnet
    monkeypatch.setattr(mtcnn, "_stage_rnet", lambda image, boxes, t: rescored.append(boxes) or stage_rnet(image, boxes, t))
    both = sorted(video_finder.detect(rgb), key=lambda d: d.box[0])
    assert len(both) == 2
    left, right = both
    only = video_finder.detect(rgb, known=[left.box])
    assert len(only) == 1 and np.allclose(only[0].box, right.box, atol=1.0), "the new face, boxed as before"
    on_left = [iou_matrix(boxes[:, :4], np.array([left.box])).max() for boxes in rescored]
    assert on_left[0] >= KNOWN_IOU > on_left[1], "RNet re-scores the followed face's proposals no more"


@pytest.mark.parametrize("size", [(1280, 720), (640, 480)])
def test_the_search_s_fast_pyramid_finds_the_faces_the_package_s_pyramid_finds(video_finder, portraits, size):
    rgb = np.full((size[1], size[0], 3), 110, np.uint8)
    for x, side, state in ((10, 120, "none"), (150, 160, "worn"), (330, 300, "under_nose")):
        rgb[100:100 + side, x:x + side] = cv2.cvtColor(cv2.resize(portraits[state], (side, side)), cv2.COLOR_BGR2RGB)
    exact = sorted(video_finder.detect(rgb), key=lambda d: d.box[0])
    fast = sorted(video_finder.detect(rgb, fast_pyramid=True), key=lambda d: d.box[0])
    assert len(exact) == 3 and len(fast) == 3
    overlap = iou_matrix(np.array([d.box for d in fast]), np.array([d.box for d in exact])).diagonal()
    assert overlap.min() > 0.8, "the same faces, boxed alike: RNet and ONet still sample the frame itself"
    image = video_finder.finder._normalize(rgb)
    scales = [0.3, 0.3 * 0.709, 0.15]
    levels = [level for _, level in video_finder.finder._pyramid(image, scales, fast=True)]
    package = [level for _, level in video_finder.finder._pyramid(image, scales)]
    assert np.array_equal(levels[0], package[0]), "the first level comes from the frame, as the package's"
    assert np.allclose(levels[2], package[2], atol=1e-6), "half the first level's scale: the same but for rounding"
    assert not np.array_equal(levels[1], package[1]), "other levels come from the first, not the frame"


def test_a_still_scene_where_a_followed_face_was_lost_is_searched_every_cycle(video_finder):
    still = in_frame(np.full((512, 512, 3), 150, np.uint8))
    finder = Counting(video_finder)
    searcher = Searcher(finder, SearchPlan(yunet=False), fps=15)
    for _ in range(20):  # past the first cycle and into the skipped frames of a still scene
        searcher(still, [])
    before = finder.calls
    for _ in range(6):
        searcher(still, [])
    assert finder.calls == before, "a still scene with every face followed skips the search"
    for _ in range(6):
        searcher(still, [], lost=True)
    assert finder.calls - before >= 4, "a face its follower lost is looked for again within a cycle"


def test_a_still_scene_is_searched_in_full_once_a_second(video_finder):
    empty = in_frame(np.full((512, 512, 3), 150, np.uint8))
    finder = Counting(video_finder)
    searcher = Searcher(finder, SearchPlan(yunet=False), fps=15)
    for _ in range(60):  # four seconds of an empty corridor
        assert searcher(empty, []) == []
    assert 4 * 2 <= finder.calls <= 5 * 2 + 2, f"{finder.calls} MTCNN searches in 60 still frames"
    moving = [np.roll(empty, 40 * i, axis=1) for i in range(1, 7)]
    moving = [cv2.rectangle(m.copy(), (100 + 150 * i, 200), (300 + 150 * i, 500), (30, 30, 30), -1) for i, m in enumerate(moving)]
    before = finder.calls
    for frame in moving:
        searcher(frame, [])
    assert finder.calls - before >= 4, "a scene that moves is searched on every frame again"


@pytest.mark.parametrize("name", ["coffee", "chelsea", "rocket", "hubble_deep_field", "moon", "cell", "page"])
def test_yunet_proposals_on_non_faces_are_not_faces(video_finder, name):
    """YuNet boxes a cat or a moon with a low score at times; none is a face once ONet has looked."""
    image = np.asarray(getattr(skimage_data, name)())
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])
    searcher = Searcher(video_finder, SearchPlan(bands=1, motion=None), fps=15)
    assert [searcher(rgb, []) for _ in range(2)] == [[], []]


def test_yunet_finds_the_masked_astronaut_in_her_own_pixels(portraits, astronaut_landmarks):
    found = YuNet().detect(in_frame(cv2.cvtColor(portraits["worn"], cv2.COLOR_BGR2RGB)))
    assert len(found) == 1 and 0.6 <= found[0].score <= 1.0
    x1, y1, x2, y2 = found[0].box
    eyes = (astronaut_landmarks[36] + astronaut_landmarks[45]) / 2 + (384, 100)
    assert x1 < eyes[0] < x2 and y1 < eyes[1] < y2 and x2 - x1 > 60
