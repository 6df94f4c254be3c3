"""``python -m training neck --config FILE``: the neck model alone, on the config's crops and split.

The neck model reads the patch under the chin (``detector.align.neck_patch``)
and says whether a mask is there: worn (its lower edge), pulled down onto the
chin or hanging on the neck. The classifier's crop ends at the chin, so a
mask on the neck was invisible to it and such faces were called bare.
``training.recipe.train`` does not train it; this command does, for the classifier
already shipped (same crops, same split), exports it with the parity check,
scores it on the test split and, with ``--install``, copies ``neck.onnx`` into ``models/``.
Crop folders made before neck patches existed give none: re-crop them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from detector.align import neck_input
from detector.classify import NECK_MIN_INSIDE
from detector.runtime import MODELS_DIR
from detector.types import LABELS
from training.lib.augment import AugmentConfig
from training.lib.config import ConfigError, TrainConfig, load_config
from training.lib.data import Arrays, source_set
from training.lib.datasets import DatasetError
from training.recipe.quantize import STALE_INT8

POLICY = AugmentConfig(flip=True, rotate=10.0, translate=0.06, brightness=0.2)
"""Mild: the patch is placed by the face's alignment, so large shifts would teach what never happens."""


def neck_arrays(data: Arrays) -> Arrays:
    """The crops whose neck patch lies mostly in the photo, as inputs, with target 1 for a mask of any kind.

    The patches are read here, for these crops only: ``training.recipe.train`` loads the same
    splits and has no use for them.
    """
    keep = np.array([bool(r.neck) and r.neck_inside >= NECK_MIN_INSIDE for r in data.records], bool).reshape(-1)
    records = [r for r, k in zip(data.records, keep) if k]
    patches = [cv2.imread(r.neck, cv2.IMREAD_GRAYSCALE) for r in records]
    masked = (data.y != LABELS.index("no_mask")).astype(np.float32)
    return Arrays(neck_input(patches), masked[keep], data.patches[keep], data.parts[keep], records)


def fit_neck(splits: dict[str, Arrays], config: TrainConfig, out: Path):
    """Train the neck model on the train split's usable patches, stopping on the val split's."""
    import keras

    from training.lib.model import neck_model
    from training.lib.weights import class_weights
    from training.recipe.train import train_dataset

    train, val = neck_arrays(splits["train"]), neck_arrays(splits["val"])
    if not len(train) or not len(val):
        raise DatasetError("no neck patches in the crops (crop folders made before neck patches: re-crop them)")
    print(f"neck patches: train {len(train)}, val {len(val)}")
    keras.utils.set_random_seed(config.seed)
    model = neck_model(config.neck_width)
    model.compile(keras.optimizers.Adam(2e-3), "binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
    # Patient: a few thousand patches give a noisy val loss, and the rate halved after every flat epoch
    # stopped the first runs underfit (train accuracy 0.69).
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=10, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=3)]
    history = model.fit(train_dataset(train, POLICY, 64, config.seed), validation_data=(val.x, val.y),
                        epochs=config.neck_epochs, callbacks=callbacks, verbose=2,
                        class_weight=class_weights(train.y.astype(np.int64)))
    model.save(out / "neck.keras")
    return model, history.history


def neck_scores(model, usable: Arrays) -> dict:
    """Per source set of ``neck_arrays``' patches: how many, and the share of masked and of bare faces
    the model gets right."""
    if not len(usable):
        return {}
    import keras

    said = np.asarray(model.predict(usable.x, verbose=0)).reshape(-1)
    right = (said >= 0.5) == (usable.y >= 0.5)
    sets = np.array([source_set(r) for r in usable.records])
    out = {}
    for name in ["all", *sorted(set(sets))]:
        pick = np.ones(len(sets), bool) if name == "all" else sets == name
        masked, bare = pick & (usable.y >= 0.5), pick & (usable.y < 0.5)
        auc = keras.metrics.AUC()
        auc.update_state(usable.y[pick], said[pick])
        out[name] = {"n": int(pick.sum()), "accuracy": round(float(right[pick].mean()), 4),
                     "auc": round(float(auc.result()), 4) if masked.any() and bare.any() else None,
                     "masked_right": round(float(right[masked].mean()), 4) if masked.any() else None,
                     "bare_right": round(float(right[bare].mean()), 4) if bare.any() else None}
    return out


def run(config: TrainConfig, out: Path, install: bool) -> dict:
    """Train, export and score the neck model into ``out``; with ``install``, into ``models/`` too.
    DatasetError when the crops hold no neck patches."""
    from training.recipe.export import export_checked

    out.mkdir(parents=True, exist_ok=True)
    splits = config.split_crops()
    model, _ = fit_neck(splits, config, out)
    test = neck_arrays(splits["test"])  # read once: the parity sample and the scores
    diff = export_checked(model, out / "neck.onnx", test.x[:32] if len(test) else neck_arrays(splits["val"]).x[:32])
    metrics = {"export_max_diff": diff, "test": neck_scores(model, test)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if install:
        shutil.copy(out / "neck.onnx", MODELS_DIR / "neck.onnx")
        print(STALE_INT8)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training neck", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path("training/configs/full.json"), help="training config (crops, splits)")
    p.add_argument("--out", type=Path, help="output folder (default: the config's out + /neck)")
    p.add_argument("--install", action="store_true", help="copy neck.onnx into models/")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
        metrics = run(config, args.out or config.out / "neck", args.install)
    except (ConfigError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
