"""``python -m training.fusion``: how much should the nose/mouth evidence count?

Scores ``detector.classify.combine`` at several weights and chin shares on
the crops of the validation and test splits, with the shipped ONNX models
(what the detector runs). Both are chosen on validation; test is shown for
the record. (The whole detector scores a candidate chin share with
``training.evaluate --chin-share``.)
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from detector.classify import CLASSIFIER_PATH, PARTS_PATH, MaskClassifier, PartsModel, combine
from detector.types import LABELS
from training.config import config_splits, load_config


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.fusion", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path(__file__).resolve().parent / "configs" / "full.json")
    p.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.8])
    p.add_argument("--chin-shares", type=float, nargs="+", default=[0.5, 0.35, 0.25, 0.15])
    p.add_argument("--classifier", type=Path, default=CLASSIFIER_PATH)
    p.add_argument("--parts", type=Path, default=PARTS_PATH)
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if cfg is None:
        return 2
    classifier, parts = MaskClassifier(args.classifier), PartsModel(args.parts)
    splits = config_splits({**cfg, "limit": None, "input_size": classifier.size})  # crops at the net's own side
    bare, masked = LABELS.index("no_mask"), LABELS.index("mask")
    print("split  weight  chin  accuracy  no_mask->mask")
    for name in ("val", "test"):
        data = splits[name]
        probs = classifier.run(data.x)
        visible = parts.predict(list(data.patches))
        for weight, chin in itertools.product(args.weights, args.chin_shares):
            pred = combine(probs, visible, weight, chin).argmax(axis=1)
            wrong_bare = int(((data.y == bare) & (pred == masked)).sum())
            print(f"{name:5s}  {weight:6.2f}  {chin:4.2f}  {(pred == data.y).mean():.4f}    "
                  f"{wrong_bare} of {int((data.y == bare).sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
