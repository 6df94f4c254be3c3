"""``python -m training.clean DIR``: find (and move) probably mislabelled photos.

The landmark check: every photo of a labelled folder goes through the
detector; the landmarks locate the nose and mouth, the visibility model says
from their pixels whether they are covered. Suspects are a ``mask`` photo
with nose and mouth both visible, a ``no_mask`` photo with the mouth covered,
and photos with no face at all. They are listed in ``DIR/suspects.csv`` with
a contact sheet ``DIR/suspects.png``. ``--apply`` moves each to the folder it
seems to belong to (or to ``DIR/_quarantine/``) and logs every move in
``DIR/clean_log.csv``; ``--undo`` moves them back. Nothing is ever deleted.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from detector.sources import SourceError, read_image
from detector.types import largest
from training.datasets import DatasetError, labelled_images
from training.sheets import contact_sheet

QUARANTINE = "_quarantine"
LOG = "clean_log.csv"


def verdict(label: str, faces) -> tuple[str, str] | None:
    """(reason, where it should go) for a suspect photo, None when it looks right."""
    if not faces:
        return "no face found", QUARANTINE
    face = largest(faces)
    if label == "mask" and face.nose_visible and face.mouth_visible:
        return "labelled mask, nose and mouth visible", "no_mask"
    if label == "no_mask" and not face.mouth_visible:
        return "labelled no_mask, mouth covered", "mask" if not face.nose_visible else "incorrect"
    return None


def find_suspects(root: Path) -> list[dict]:
    from detector.pipeline import Pipeline

    pipeline = Pipeline()
    suspects = []
    for path, label in tqdm(labelled_images(root), desc="check", unit="img"):
        try:
            faces = pipeline.analyse(read_image(path), still=True)
        except SourceError:
            faces = []
        found = verdict(label, faces)
        if found:
            suspects.append({"file": str(path.relative_to(root)), "label": label, "reason": found[0], "move_to": found[1]})
    return suspects


def apply_moves(root: Path, suspects: list[dict]) -> int:
    """Move suspects and append each move to the log; never overwrites, never deletes."""
    log_path = root / LOG
    new = not log_path.exists()
    with open(log_path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(["from", "to", "reason"])
        moved = 0
        for s in suspects:
            src = root / s["file"]
            folder = root / (f"{QUARANTINE}/{s['label']}" if s["move_to"] == QUARANTINE else s["move_to"])
            dst = folder / src.name
            if not src.exists() or dst.exists():
                continue
            folder.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))
            writer.writerow([str(src.relative_to(root)), str(dst.relative_to(root)), s["reason"]])
            moved += 1
    return moved


def undo_moves(root: Path) -> int:
    """Reverse every logged move, newest first; the log is kept, renamed."""
    log_path = root / LOG
    if not log_path.exists():
        raise DatasetError(f"nothing to undo: no {LOG} in {root}")
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    undone = 0
    for row in reversed(rows):
        src, dst = root / row["to"], root / row["from"]
        if src.exists() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(dst))
            undone += 1
    log_path.rename(log_path.with_suffix(".undone.csv"))
    return undone


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.clean", description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=Path, help="labelled folder (subfolders mask / incorrect / no_mask)")
    p.add_argument("--apply", action="store_true", help="move the suspects (logged in clean_log.csv)")
    p.add_argument("--undo", action="store_true", help="move back everything clean_log.csv records")
    args = p.parse_args(argv)
    try:
        if args.undo:
            print(f"moved back {undo_moves(args.dir)} files")
            return 0
        suspects = find_suspects(args.dir)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with open(args.dir / "suspects.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "reason", "move_to"])
        writer.writeheader()
        writer.writerows(suspects)
    if suspects:
        images = [cv2.imread(str(args.dir / s["file"])) for s in suspects[:64]]
        contact_sheet(images, [f"{s['label']}>{s['move_to']}" for s in suspects[:64]], args.dir / "suspects.png")
    print(f"{len(suspects)} suspects listed in {args.dir / 'suspects.csv'}")
    if args.apply:
        print(f"moved {apply_moves(args.dir, suspects)} files; undo with --undo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
