"""``python -m training crop SRC DST``: aligned grayscale face crops for training.

SRC is a labelled folder (subfolders ``mask``/``incorrect``/``no_mask`` or the
public sets' names) or a scene set (``images/`` plus ``labels.json`` of boxes).
Faces are found and aligned by the detector's own code (``detector.finders``,
``detector.landmarks``, ``detector.align``), so training sees what the
detector will see. Writes ``DST/<label>/*.png``, the patch under each chin in
``DST/neck/<label>/*.png``, and ``DST/crops.csv``; photos
where no face was found are listed in ``DST/no_face.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from detector.align import align_face, alignment_matrix, neck_patch
from detector.finders import FaceFinder, FinderConfig, largest_still_face, make_finder
from detector.landmarks import Landmarker
from detector.sources import SourceError, read_image
from detector.track import iou_matrix
from training.lib.datasets import INDEX_NAME, CropRecord, DatasetError, labelled_images, write_index

MIN_SCENE_FACE = 20
"""Scene faces smaller than this (pixels) are too blurred to say anything."""
SCENE_MATCH_IOU = 0.4
"""A detection overlapping a labelled scene face this much is that face (cropped, and judged by evaluate)."""


class Cropper:
    """Face finder + landmarks + alignment, writing crops under ``dst``."""

    def __init__(self, dst: Path, finder: FaceFinder | None = None) -> None:
        self.dst = dst
        self.finder = finder or make_finder("onnx", FinderConfig())
        self.landmarker = Landmarker()
        self.records: list[CropRecord] = []
        self.no_face: list[str] = []

    def save(self, image: np.ndarray, box, label: str, source: str, group: str, name: str, state: str = "") -> None:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        landmarks = self.landmarker(gray, box)
        matrix = alignment_matrix(landmarks)
        crop, crop_lm = align_face(gray, landmarks, matrix=matrix)
        neck, inside = neck_patch(gray, matrix)
        rel, neck_rel = Path(label) / f"{name}.png", Path("neck") / label / f"{name}.png"
        for path, image_out in ((rel, crop), (neck_rel, neck)):
            (self.dst / path.parent).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(self.dst / path), image_out)
        self.records.append(CropRecord(str(rel), label, source, group, state, crop_lm, str(neck_rel), inside))

    def largest_face(self, image: np.ndarray):
        face = largest_still_face(self.finder, image)
        return None if face is None else face.box


def crop_labelled(src: Path, cropper: Cropper) -> None:
    """The largest face of each photo in a labelled folder."""
    for path, label in tqdm(labelled_images(src), desc=f"crop {src.name}", unit="img"):
        rel = f"{src.name}/{path.parent.name}/{path.name}"
        try:
            image = read_image(path)
        except SourceError:
            cropper.no_face.append(rel)
            continue
        box = cropper.largest_face(image)
        if box is None:
            cropper.no_face.append(rel)
            continue
        state = path.stem.rsplit("__", 1)[-1] if "__" in path.stem else ""
        group = path.stem.split("__")[0]
        name = f"{src.name}_{path.parent.name}_{path.stem}"
        cropper.save(image, box, label, rel, f"{src.name}/{group}", name, state)


def scene_boxes(finder: FaceFinder, image: np.ndarray, faces: list[dict]) -> list[tuple[float, ...] | None]:
    """The box to fit landmarks in for each labelled face of a scene photo: MTCNN's where it
    agrees with the label (its boxes are what the detector fits in), else the label's; None
    for a face under ``MIN_SCENE_FACE``. Shared by the cropper and the scene painter."""
    found = finder.detect(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    truth = np.array([f["box"] for f in faces], float).reshape(-1, 4)
    iou = iou_matrix(truth, np.array([d.box for d in found], float).reshape(-1, 4))
    boxes = []
    for i, box in enumerate(truth):
        if min(box[2] - box[0], box[3] - box[1]) < MIN_SCENE_FACE:
            boxes.append(None)
        elif iou.shape[1] and iou[i].max() >= SCENE_MATCH_IOU:
            boxes.append(tuple(found[int(iou[i].argmax())].box))
        else:
            boxes.append(tuple(box))
    return boxes


def crop_scenes(src: Path, cropper: Cropper) -> None:
    """Every labelled box of a scene set (a painted one's faces keep their ``state``)."""
    labels = json.loads((src / "labels.json").read_text())
    for file, faces in tqdm(sorted(labels.items()), desc=f"crop {src.name}", unit="img"):
        try:
            image = read_image(src / "images" / file)
        except SourceError:
            continue
        for i, (face, box) in enumerate(zip(faces, scene_boxes(cropper.finder, image, faces))):
            if box is None:
                continue
            name = f"{src.name}_{Path(file).stem}_{i}"
            cropper.save(image, box, face["label"], f"{src.name}/{file}#{i}", f"{src.name}/{file}", name,
                         face.get("state", ""))


def crop_sets(sources: list[Path], dst: Path) -> Cropper:
    """Crops of every labelled folder and scene set in ``sources`` into ``dst``, with ``crops.csv`` and
    ``no_face.csv``; the cropper holds what was written. DatasetError for a source that is neither."""
    dst.mkdir(parents=True, exist_ok=True)
    cropper = Cropper(dst)
    for src in sources:
        if (src / "labels.json").exists():
            crop_scenes(src, cropper)
        else:
            crop_labelled(src, cropper)
    write_index(dst / INDEX_NAME, cropper.records)
    with open(dst / "no_face.csv", "w", newline="") as f:
        csv.writer(f).writerows([["source"]] + [[s] for s in cropper.no_face])
    return cropper


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training crop", description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, nargs="+", help="labelled folder(s) or scene set(s)")
    p.add_argument("dst", type=Path, help="output folder for crops and crops.csv")
    args = p.parse_args(argv)
    try:
        cropper = crop_sets(args.src, args.dst)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = len(cropper.records) + len(cropper.no_face)
    print(f"{len(cropper.records)} crops written to {args.dst}; no face in {len(cropper.no_face)} of {total} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main())
