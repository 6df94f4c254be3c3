"""Labelled image folders, and the crop index that training reads.

A labelled folder has one subfolder per label. The public sets in
``../shared/data`` use their own names; ``FOLDER_LABELS`` maps them.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detector.sources import IMAGE_EXTS
from detector.types import LABELS

FOLDER_LABELS = {
    "mask": "mask", "with_mask": "mask", "CWM": "mask",
    "incorrect": "incorrect", "IWM": "incorrect",
    "no_mask": "no_mask", "without_mask": "no_mask",
}
INDEX_NAME = "crops.csv"
INDEX_FIELDS = ("file", "label", "source", "group", "state", "landmarks", "neck", "neck_inside")


class DatasetError(Exception):
    """A dataset folder that cannot be used; shown to the user as one line."""


def labelled_images(root: Path) -> list[tuple[Path, str]]:
    """(image, label) for every image in the label subfolders of ``root``, sorted."""
    if not root.is_dir():
        raise DatasetError(f"not a folder: {root}")
    out = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and p.name in FOLDER_LABELS):
        out += [(f, FOLDER_LABELS[sub.name]) for f in sorted(sub.iterdir()) if f.suffix.lower() in IMAGE_EXTS]
    if not out:
        names = ", ".join(sorted(set(FOLDER_LABELS)))
        raise DatasetError(f"no labelled images in {root} (expected subfolders named one of: {names})")
    return out


@dataclass
class CropRecord:
    """One aligned face crop written by ``training.recipe.crop``."""

    file: str
    """Path of the crop PNG, relative to the index."""
    label: str
    source: str
    """The photo it came from."""
    group: str
    """Crops that must stay on one side of a split (same photo, same person)."""
    state: str = ""
    """For synthetic faces, how the mask was painted (worn, under_nose, on_chin, none)."""
    landmarks: np.ndarray | None = None
    neck: str = ""
    """Path of the patch under the chin (``detector.align.neck_patch``), relative to the index; "" if none."""
    neck_inside: float = 0.0
    """Share of the neck patch inside the photo."""

    def row(self) -> dict:
        lm = "" if self.landmarks is None else json.dumps(np.round(self.landmarks, 1).tolist())
        return {"file": self.file, "label": self.label, "source": self.source, "group": self.group,
                "state": self.state, "landmarks": lm, "neck": self.neck, "neck_inside": round(self.neck_inside, 3)}


def write_index(path: Path, records: list[CropRecord]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_FIELDS)
        writer.writeheader()
        writer.writerows(r.row() for r in records)


def read_index(root: Path) -> list[CropRecord]:
    """The records of a crop folder; files resolved relative to it."""
    path = root / INDEX_NAME
    if not path.exists():
        raise DatasetError(f"no {INDEX_NAME} in {root}: make crops with python -m training crop first")
    out = []
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["label"] not in LABELS:
                continue
            lm = np.array(json.loads(row["landmarks"]), np.float32) if row["landmarks"] else None
            neck = str(root / row["neck"]) if row.get("neck") else ""
            out.append(CropRecord(str(root / row["file"]), row["label"], row["source"], row["group"], row["state"], lm,
                                  neck, float(row.get("neck_inside") or 0.0)))
    return out


def part_targets(record: CropRecord) -> tuple[float, float]:
    """What is known of [nose visible, mouth visible]; -1 where unknown.

    Painted masks say exactly what they cover. For real photos only what the
    label implies: a worn mask covers both, a bare face shows both, and a mask
    worn wrong shows the nose but may or may not cover the mouth.
    """
    by_state = {"worn": (0.0, 0.0), "under_nose": (1.0, 0.0), "on_chin": (1.0, 1.0), "none": (1.0, 1.0)}
    if record.state in by_state:
        return by_state[record.state]
    return {"mask": (0.0, 0.0), "no_mask": (1.0, 1.0), "incorrect": (1.0, -1.0)}[record.label]
