"""The aligned crop: the same face gives the same crop wherever the frame ends, and what lies
outside the frame is filled flat with the face's mean grey."""

from __future__ import annotations

import cv2
import numpy as np

from detector.align import CROP_SIZE, align_face


def test_face_inside_the_frame_is_cut_the_same_with_or_without_a_border(portraits, astronaut_landmarks):
    """A wide border around the frame moves nothing: the crop comes from inside the frame either way."""
    image = portraits["none"]
    crop, points = align_face(image, astronaut_landmarks)
    pad = 100
    framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(255, 0, 0))
    crop2, points2 = align_face(framed, astronaut_landmarks + pad)
    assert crop.shape == (CROP_SIZE, CROP_SIZE)
    assert np.abs(crop.astype(int) - crop2.astype(int)).max() <= 1
    assert np.allclose(points, points2, atol=0.05)


def test_face_cut_by_the_frame_is_filled_with_its_mean_grey(portraits, astronaut_landmarks):
    """A photo that ends at the lower lip: the rows of the crop below it are one flat grey, the mean of the rest."""
    lip = int(astronaut_landmarks[57, 1])
    crop, points = align_face(portraits["none"][:lip], astronaut_landmarks)
    edge = int(points[57, 1])  # about where the photo ends in the crop (the head is tilted a little)
    below = crop[edge + 6 :]
    assert below.size and (below == below.flat[0]).all(), "outside the photo is one flat value"
    assert abs(int(below.flat[0]) - crop[: edge - 6].mean()) < 6
    whole, _ = align_face(portraits["none"], astronaut_landmarks)
    assert np.array_equal(crop[: edge - 6], whole[: edge - 6]), "inside the photo the crop is unchanged"


def test_a_face_at_four_times_the_pixels_gives_about_the_same_crop(portraits, astronaut_landmarks):
    """A 4K frame or a phone photo holds faces far larger than the crop: warped with bilinear sampling
    alone they alias (texture and sensor noise turn to speckle) and look unlike what the model was
    trained on. Area-shrunk first, the crop stays close to the one from the small frame (4.4 grey
    levels apart on average without the shrinking, 2.6 with it)."""
    gray = cv2.cvtColor(portraits["none"], cv2.COLOR_BGR2GRAY)
    small, points = align_face(gray, astronaut_landmarks)
    big = cv2.resize(gray, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    big = np.clip(big + np.random.default_rng(0).normal(0, 8, big.shape), 0, 255).astype(np.uint8)
    crop, big_points = align_face(big, (astronaut_landmarks + 0.5) * 4 - 0.5)
    assert np.abs(crop.astype(float) - small).mean() < 3.5
    assert np.allclose(points, big_points, atol=0.01), "landmarks land where they did"


def test_neck_patch_says_how_much_of_it_the_photo_holds(portraits, astronaut_landmarks):
    """The astronaut's neck and collar are in the photo; cut at the lower lip, the patch is mostly fill
    and the share says so (the neck model is then not asked)."""
    from detector.align import NECK_SIZE, alignment_matrix, neck_patch
    from detector.classify import NECK_MIN_INSIDE

    matrix = alignment_matrix(astronaut_landmarks)
    patch, inside = neck_patch(portraits["none"], matrix)
    assert patch.shape == (NECK_SIZE, NECK_SIZE) and inside == 1.0
    assert patch.std() > 10, "real texture, not fill"
    lip = int(astronaut_landmarks[57, 1])
    cut, cut_inside = neck_patch(portraits["none"][:lip], matrix)
    assert cut_inside < NECK_MIN_INSIDE
    rows = int(NECK_SIZE * 0.6)
    assert (cut[-rows:] == cut[-1, 0]).all(), "below the photo's edge: one flat grey"


def test_chin_unseen_says_how_much_of_the_chin_the_photo_cut_off(portraits, astronaut_landmarks):
    """The whole astronaut shows her chin; cut under the lower lip, the photo holds none of the
    region between lip and chin; cut at the chin point, most of it, and less the higher the cut."""
    from detector.align import alignment_matrix, chin_unseen

    matrix = alignment_matrix(astronaut_landmarks)
    image = portraits["none"]
    assert chin_unseen(image.shape, matrix) == 0.0
    lip, chin = astronaut_landmarks[57, 1], astronaut_landmarks[8, 1]
    assert chin_unseen(image[: int(lip)].shape, matrix) == 1.0
    at_chin = chin_unseen(image[: int(chin)].shape, matrix)
    assert at_chin < 0.3
    assert at_chin < chin_unseen(image[: int((lip + chin) / 2)].shape, matrix) < 1.0


def test_a_landmark_fit_that_makes_no_face_is_still_judged(pipeline, portraits, astronaut_landmarks):
    """dlib fits 68 points to any box; on a box of a few pixels or a false face they can collapse to one
    place, or put the mouth far outside the aligned crop. The frame is judged anyway."""
    from detector.types import LABELS, Face

    image = portraits["none"]
    collapsed = np.full((68, 2), 200.0, np.float32)
    scattered = astronaut_landmarks.copy()
    scattered[48:68] += 4000.0  # the mouth far off, the points the alignment uses in place
    off_frame = astronaut_landmarks - 5000.0
    faces = [Face(box=(190, 190, 210, 210), landmarks=lm) for lm in (collapsed, scattered, off_frame)]
    pipeline.judge(image, faces)
    assert all(f.label in LABELS and np.isfinite(f.probs).all() for f in faces)
