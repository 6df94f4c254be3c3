"""``python -m training clean DIR``: find (and move) probably mislabelled photos.

The landmark check: every photo of a labelled folder goes through the
detector; the landmarks locate the nose and mouth, the visibility model says
from their pixels whether they are covered. Suspects are a ``mask`` photo
with nose and mouth both visible, a ``no_mask`` photo with the mouth covered,
and photos with no face at all. They are listed in ``DIR/suspects.csv`` with
a contact sheet ``DIR/suspects.png`` (numbered as the CSV's rows). ``--apply``
moves each to the folder it seems to belong to (or to ``DIR/_quarantine/``)
and logs every move in ``DIR/clean_log.csv``; ``--undo`` moves them back.
Nothing is ever deleted.

``--nose-out`` also lists ``mask`` photos whose nose shows above a covered
mouth (a mask worn under the nose, which belongs in ``incorrect``). That check
needs a person: on ``chandrika/with_mask`` it listed 90 of 1772 photos, of which
29 plainly show the nose out and 6 more probably do; the rest are tight crops
that end at the mask, where the landmarks put the nose too low. So look at the
sheet, delete the rows it got wrong from the CSV, and move the rest with
``--reviewed CSV``, which moves exactly the rows left and checks nothing again.
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
from detector.types import LABELS, largest
from training.lib.datasets import DatasetError, labelled_images
from training.lib.sheets import contact_sheet

QUARANTINE = "_quarantine"
LOG = "clean_log.csv"


FIELDS = ("file", "label", "reason", "move_to")
NOSE_OUT = "labelled mask, nose out above the mask"


def verdict(label: str, faces, nose_out: bool = False) -> tuple[str, str] | None:
    """(reason, where it should go) for a suspect photo, None when it looks right."""
    if not faces:
        return "no face found", QUARANTINE
    face = largest(faces)
    if label == "mask" and face.nose_visible and face.mouth_visible:
        return "labelled mask, nose and mouth visible", "no_mask"
    if nose_out and label == "mask" and face.nose_visible:
        return NOSE_OUT, "incorrect"
    if label == "no_mask" and not face.mouth_visible:
        return "labelled no_mask, mouth covered", "mask" if not face.nose_visible else "incorrect"
    return None


def find_suspects(root: Path, nose_out: bool = False) -> list[dict]:
    from detector.pipeline import Pipeline

    pipeline = Pipeline()
    suspects = []
    for path, label in tqdm(labelled_images(root), desc="check", unit="img"):
        try:
            faces = pipeline.analyse(read_image(path), still=True)
        except SourceError:
            faces = []
        found = verdict(label, faces, nose_out)
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


def read_reviewed(root: Path, path: Path) -> list[dict]:
    """The rows of a reviewed suspects CSV, each checked: a file inside ``root``, a label folder or the quarantine.

    A file already moved is no error (``apply_moves`` skips it), so a list can be applied twice.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as err:
        raise DatasetError(f"cannot read the reviewed list {path}: {err.strerror}") from None
    for n, row in enumerate(rows, start=2):
        if set(FIELDS) - set(row) or None in row.values():
            raise DatasetError(f"{path}, line {n}: expected the columns {', '.join(FIELDS)}")
        if row["move_to"] not in (*LABELS, QUARANTINE):
            raise DatasetError(f"{path}, line {n}: move_to must be one of {', '.join(LABELS)}, {QUARANTINE}")
        if not (root / row["file"]).resolve().is_relative_to(root.resolve()):
            raise DatasetError(f"{path}, line {n}: {row['file']} is not inside {root}")
    return rows


def write_suspects(root: Path, suspects: list[dict], per_sheet: int = 64) -> list[Path]:
    """``suspects.csv`` and its contact sheets (``suspects.png``, ``suspects_2.png``, ...), tiles numbered as CSV rows.

    Returns the sheets written, so the user is told which to look at (a sheet left by an earlier, longer list is
    not deleted: this tool deletes nothing).
    """
    with open(root / "suspects.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(FIELDS))
        writer.writeheader()
        writer.writerows(suspects)
    sheets = []
    for page, start in enumerate(range(0, len(suspects), per_sheet), start=1):
        rows = suspects[start : start + per_sheet]
        images = [cv2.imread(str(root / s["file"])) for s in rows]
        captions = [f"{start + i + 1}: {s['label']}>{s['move_to']}" for i, s in enumerate(rows)]
        sheets.append(contact_sheet(images, captions, root / ("suspects.png" if page == 1 else f"suspects_{page}.png")))
    return sheets


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
    p = argparse.ArgumentParser(prog="python -m training clean", description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=Path, help="labelled folder (subfolders mask / incorrect / no_mask)")
    p.add_argument("--apply", action="store_true", help="move the suspects (logged in clean_log.csv)")
    p.add_argument("--undo", action="store_true", help="move back everything clean_log.csv records")
    p.add_argument("--nose-out", action="store_true",
                   help="also list mask photos whose nose shows above the mask (review them: see --reviewed)")
    p.add_argument("--reviewed", type=Path, metavar="CSV",
                   help="move exactly the rows of this suspects CSV (after deleting the wrong ones); checks nothing again")
    args = p.parse_args(argv)
    try:
        if args.undo:
            print(f"moved back {undo_moves(args.dir)} files")
            return 0
        if args.reviewed:
            if not args.dir.is_dir():
                raise DatasetError(f"no such folder: {args.dir}")
            rows = read_reviewed(args.dir, args.reviewed)
            print(f"moved {apply_moves(args.dir, rows)} of the {len(rows)} files listed; undo with --undo")
            return 0
        suspects = find_suspects(args.dir, args.nose_out)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sheets = write_suspects(args.dir, suspects)
    print(f"{len(suspects)} suspects listed in {args.dir / 'suspects.csv'}"
          + (f"; look at {', '.join(p.name for p in sheets)}" if sheets else ""))
    if args.apply:
        print(f"moved {apply_moves(args.dir, suspects)} files; undo with --undo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
