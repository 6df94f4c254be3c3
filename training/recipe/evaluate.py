"""``python -m training evaluate DIR --json OUT [--plot PNG]``: the whole detector, scored.

Every image of a labelled folder goes through the real pipeline (face finder,
landmarks, alignment, classifier); the largest face of each image is judged,
and an image where no face is found counts as wrong (``no_face``), so a
detector that misses masked faces cannot look good. A scene set (``images/``
+ ``labels.json``) is scored per labelled face instead (each photo through the
still-photo path, like any photo): a face the detector does not find (IoU < 0.4)
counts as wrong.

``--splits FILE --split test`` keeps only the photos that training held out.
``--classifier``/``--parts`` score candidate models before they are installed;
``--mistakes PNG`` draws every wrong verdict, for a person to look at.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binomtest
from tqdm import tqdm

from detector.sources import SourceError, read_image
from detector.track import iou_matrix
from detector.types import LABELS, largest
from training.lib.datasets import DatasetError, labelled_images
from training.lib.sheets import around
from training.lib.splits import labelled_split, read_held, scene_split
from training.recipe.crop import MIN_SCENE_FACE, SCENE_MATCH_IOU

NO_FACE = "no_face"


def _mistake(image: np.ndarray, box, true: str, predicted: str, name: str) -> tuple[np.ndarray, str]:
    """(thumbnail, caption) of a wrong verdict for the mistakes sheet: the face with a margin,
    or the whole image where no face was boxed."""
    caption = f"{true[:4]}>{predicted[:4]} {name}"
    if box is None:
        return image, caption
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    pad = (x2 - x1) // 5
    crop = around(image, (x1, y1, x2, y2), pad, pad)
    return (crop if crop.size else image), caption


def judge_folder(pipeline, root: Path, splits, split, mistakes: list | None = None) -> list[tuple[str, str, str]]:
    """(true, predicted, key) for the largest face of each image in a labelled folder; the key
    (``set/folder/file``) names the photo, so two candidates' verdicts can be paired.

    ``mistakes`` (a list) collects (thumbnail, caption) of every wrong verdict.
    """
    pairs = []
    for path, label in tqdm(labelled_images(root), desc=f"evaluate {root.name}", unit="img"):
        if split and labelled_split(path, splits) != split:
            continue
        try:
            image = read_image(path)
            faces = pipeline.analyse(image, still=True)
        except SourceError:
            image, faces = None, []
        subject = largest(faces) if faces else None
        pairs.append((label, subject.label if subject else NO_FACE, f"{root.name}/{path.relative_to(root).as_posix()}"))
        if mistakes is not None and image is not None and pairs[-1][1] != label:
            mistakes.append(_mistake(image, subject.box if subject else None, label, pairs[-1][1], path.stem))
    return pairs


def judge_scenes(
    pipeline, root: Path, splits, split, min_face: int = MIN_SCENE_FACE, mistakes: list | None = None
) -> list[tuple[str, str, str]]:
    """(true, predicted, key) for every labelled face of a scene set (key: ``set/file#index``)."""
    labels = json.loads((root / "labels.json").read_text())
    pairs = []
    for file, truth in tqdm(sorted(labels.items()), desc=f"evaluate {root.name}", unit="img"):
        if split and scene_split(root.name, file, splits) != split:
            continue
        try:
            image = read_image(root / "images" / file)
            faces = pipeline.analyse(image, still=True)
        except SourceError:  # an unreadable photo: its faces were not found
            image, faces = None, []
        boxes = np.array([t["box"] for t in truth], float).reshape(-1, 4)
        iou = iou_matrix(boxes, np.array([f.box for f in faces], float).reshape(-1, 4))
        for i, t in enumerate(truth):
            if min(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) < min_face:
                continue
            hit = iou.shape[1] and iou[i].max() >= SCENE_MATCH_IOU
            pairs.append((t["label"], faces[int(iou[i].argmax())].label if hit else NO_FACE, f"{root.name}/{file}#{i}"))
            if mistakes is not None and image is not None and pairs[-1][1] != t["label"]:
                mistakes.append(_mistake(image, boxes[i], t["label"], pairs[-1][1], Path(file).stem))
    return pairs


def interval(hits: int, n: int) -> list[float]:
    """95 % Wilson interval of a proportion: the held-out sets are small (61 real ``incorrect``
    test faces), so a rate is quoted with the range the data leave open."""
    if n == 0:
        return [0.0, 1.0]
    low, high = binomtest(hits, n).proportion_ci(0.95, method="wilson")
    return [round(float(low), 4), round(float(high), 4)]


def report(pairs: list[tuple[str, ...]]) -> dict:
    """The evaluation contract: accuracy, n, no_face, per_class, confusion; ``ci95``, the 95 %
    intervals of the accuracy and of each class's recall; where the pairs carry a key (true,
    predicted, key), also each face's ``[true, predicted]`` under it (``verdicts``), so
    ``training.tools.paired`` can set two candidates side by side face by face."""
    keyed = [p for p in pairs if len(p) == 3]
    pairs = [p[:2] for p in pairs]
    n = len(pairs)
    predicted = list(LABELS) + [NO_FACE]
    confusion = {t: {p: sum(1 for a, b in pairs if a == t and b == p) for p in predicted} for t in LABELS}
    per_class = {}
    for label in LABELS:
        tp = confusion[label][label]
        called = sum(confusion[t][label] for t in LABELS)
        total = sum(confusion[label].values())
        if total or called:
            per_class[label] = {"precision": tp / called if called else 0.0, "recall": tp / total if total else 0.0, "n": total}
    right = sum(a == b for a, b in pairs)
    return {
        "accuracy": right / n if n else 0.0,
        "n": n,
        "no_face": sum(b == NO_FACE for _, b in pairs),
        "per_class": per_class,
        "confusion": confusion,
        "ci95": {"accuracy": interval(right, n),
                 "recall": {k: interval(confusion[k][k], v["n"]) for k, v in per_class.items()}},
        **({"verdicts": {key: [a, b] for a, b, key in keyed}} if keyed else {}),
    }


def plot_confusion(result: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(LABELS) + [NO_FACE]
    rows = [t for t in LABELS if sum(result["confusion"][t].values())]
    table = np.array([[result["confusion"][t][p] for p in cols] for t in rows])
    fig, ax = plt.subplots(figsize=(6, 1.2 + 0.8 * len(rows)))
    ax.imshow(table / np.maximum(table.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(table):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {result['accuracy']:.3f} (n={result['n']})")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def fusion_settings(args: argparse.Namespace) -> dict | None:
    """``PipelineConfig`` changes for the candidate models and fusion settings; None after an error line."""
    settings: dict = {k: str(v) for k, v in (("classifier", args.classifier), ("parts", args.parts),
                                             ("neck", args.neck)) if v}
    if args.no_neck:
        settings["neck"] = ""
    for name, value, high in (("chin-share", args.chin_share, 1.0), ("neck-weight", args.neck_weight, 10.0)):
        if value is not None:
            if not 0.0 <= value <= high:
                print(f"error: --{name} must be between 0 and {high:g}, not {value}", file=sys.stderr)
                return None
            settings[name.replace("-", "_")] = value
    return settings


def candidate_pipeline(args: argparse.Namespace):
    """The detector with the candidate models and settings the command line names; None after an error line."""
    from detector.finders import FinderConfig
    from detector.pipeline import Pipeline, PipelineConfig

    if args.mtcnn and args.finder != "onnx":
        print("error: --mtcnn is a folder of ONNX nets: it needs --finder onnx", file=sys.stderr)
        return None
    settings = fusion_settings(args)
    if settings is None:
        return None
    try:
        return Pipeline(PipelineConfig(finder=args.finder, faces=FinderConfig(model_dir=args.mtcnn), **settings))
    except FileNotFoundError as err:  # the loaders name the missing model
        print(f"error: {err}", file=sys.stderr)
        return None


def summary(result: dict) -> str:
    """The one line the command prints: accuracy and each class's precision and recall, with intervals."""
    ci = result["ci95"]
    return (f"accuracy {result['accuracy']:.4f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}] on {result['n']} "
            f"faces ({result['no_face']} not found); " +
            ", ".join(f"{k}: P {v['precision']:.3f} R {v['recall']:.3f} [{ci['recall'][k][0]:.3f}, "
                      f"{ci['recall'][k][1]:.3f}] (n={v['n']})" for k, v in result["per_class"].items()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", type=Path, nargs="+", help="labelled folder(s) or scene set(s)")
    p.add_argument("--json", type=Path, required=True, help="write the result here")
    p.add_argument("--plot", type=Path, help="confusion-matrix PNG")
    p.add_argument("--splits", type=Path, help="splits.json written by training.recipe.train")
    p.add_argument("--split", choices=("train", "val", "test"), help="only photos of this split")
    p.add_argument("--finder", choices=("onnx", "reference"), default="onnx")
    p.add_argument("--mtcnn", type=Path, help="a folder of candidate MTCNN nets, e.g. a training.recipe.finetune_mtcnn "
                   "--out (default: models/mtcnn)")
    p.add_argument("--classifier", type=Path, help="a candidate mask_classifier.onnx (default: the shipped one)")
    p.add_argument("--parts", type=Path, help="a candidate parts.onnx (default: the shipped one)")
    p.add_argument("--chin-share", type=float, help="candidate share of nose-and-mouth-visible faces read as chin masks "
                   "(default: detector.classify.CHIN_SHARE)")
    p.add_argument("--neck", type=Path, help="a candidate neck.onnx (default: the shipped one)")
    p.add_argument("--no-neck", action="store_true", help="judge faces without the neck model")
    p.add_argument("--neck-weight", type=float, help="candidate weight of the neck model "
                   "(default: detector.classify.NECK_WEIGHT)")
    p.add_argument("--mistakes", type=Path, help="contact-sheet PNG of every wrong verdict (true>predicted, file)")
    return p.parse_args(argv)


def judge_sets(pipeline, dirs: list[Path], held: dict[str, str] | None, split: str | None,
               mistakes: list | None = None) -> dict:
    """The whole detector on every labelled folder and scene set of ``dirs`` (only ``split``'s photos, by
    ``held``), scored; each wrong verdict's crop and caption appended to ``mistakes`` when given.
    DatasetError for a folder that is neither."""
    pairs = []
    for d in dirs:
        judge = judge_scenes if (d / "labels.json").exists() else judge_folder
        pairs += judge(pipeline, d, held, split, mistakes=mistakes)
    return report(pairs)


def run(dirs: list[Path], held: dict[str, str] | None, split: str | None, json_path: Path,
        plot_path: Path | None = None, pipeline=None, mistakes_path: Path | None = None) -> dict:
    """``judge_sets`` with the shipped detector (or ``pipeline``), written to ``json_path``, drawn to ``plot_path``,
    and every wrong verdict put on a contact sheet at ``mistakes_path``."""
    from detector.pipeline import Pipeline

    mistakes = [] if mistakes_path else None
    result = judge_sets(pipeline or Pipeline(), dirs, held, split, mistakes)
    json_path.write_text(json.dumps(result, indent=2))
    if mistakes_path:
        from training.lib.sheets import contact_sheet

        contact_sheet([m[0] for m in mistakes], [m[1] for m in mistakes], mistakes_path, cols=12)
    if plot_path:
        plot_confusion(result, plot_path, ", ".join(d.name for d in dirs))
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        held = read_held(args.splits)
    except ValueError as err:
        print(f"error: --splits: {err}", file=sys.stderr)
        return 2
    pipeline = candidate_pipeline(args)
    if pipeline is None:
        return 2
    try:
        result = run(args.dirs, held, args.split, args.json, args.plot, pipeline, args.mistakes)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
