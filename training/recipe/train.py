"""``python -m training train --config FILE``: train, export and score both models.

Reads the crops made by ``training.recipe.crop`` (and ``training.recipe.synth`` + crop),
splits them honestly (``training.lib.splits``), trains the mask classifier with
the configured augmentation (then, with ``finetune_epochs``, a few epochs on
the real crops alone) and the nose/mouth visibility model, writes
training curves (PNG), exports both to ONNX with a parity check, and writes
``metrics.json`` with held-out (test split) figures. ``--install`` copies the
ONNX files into ``models/``.

The config's keys are listed in ``training.lib.config``, which reads and checks it.
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
from training.lib.config import config_splits, load_config
from training.lib.data import Arrays, is_painted, source_set
from training.lib.datasets import DatasetError
from training.lib.weights import cell_weights, class_weights, real_only, set_weights
from training.recipe.quantize import STALE_INT8


def train_dataset(data: Arrays, policy: AugmentConfig, batch: int, seed: int, weights: np.ndarray | None = None):
    import tensorflow as tf

    from training.lib.augment import augmenter, shrink_blur

    aug = augmenter(policy, seed)
    columns = (data.x, data.y) if weights is None else (data.x, data.y, weights)
    ds = tf.data.Dataset.from_tensor_slices(columns).shuffle(len(data), seed=seed).batch(batch)

    def apply(x, y, *w):
        x = aug(x, training=True) if aug.layers else x
        x = shrink_blur(x, policy.resize) if policy.resize else x
        return (tf.clip_by_value(x, 0.0, 1.0), y, *w)

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


def fit_classifier(splits: dict[str, Arrays], cfg: dict, policy: AugmentConfig, out: Path):
    import keras

    from training.lib.model import mask_classifier

    keras.utils.set_random_seed(cfg.get("seed", 0))
    model = mask_classifier(width=cfg.get("width", 16), size=cfg["input_size"])
    batch_size = cfg.get("batch_size", 64)
    steps = -(-len(splits["train"]) // batch_size)
    optimizer, callbacks = optimizer_and_callbacks(cfg, steps)
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    balance = cfg.get("balance", "class")
    if balance not in ("class", "cell"):
        raise DatasetError(f"unknown balance {balance!r} (choose class or cell)")
    weights = cell_weights(splits["train"], cfg.get("balance_power", 0.5)) if balance == "cell" else None
    if cfg.get("set_weights"):
        weights = set_weights(splits["train"], cfg["set_weights"], weights)
    train = train_dataset(splits["train"], policy, batch_size, cfg.get("seed", 0), weights)
    val = (splits["val"].x, splits["val"].y)
    history = model.fit(train, validation_data=val, epochs=cfg.get("epochs", 10), callbacks=callbacks, verbose=2,
                        class_weight=class_weights(splits["train"].y) if weights is None else None)
    model.save(out / "mask_classifier.keras")
    return model, history.history


def optimizer_and_callbacks(cfg: dict, steps_per_epoch: int) -> tuple:
    """Adam and the callbacks that end training, as the config's ``schedule`` says.

    ``"plateau"`` (shipped): the rate halves after two flat val epochs and training stops
    after five, not before ``min_epochs``: val accuracy is noisy early on, and one seed
    stopped at epoch 11 still underfit (test crops 0.930; with min_epochs 12: 0.936).
    ``"cosine"``: one warm-up epoch, then a cosine decay over all ``epochs``, which all run:
    plateaus halved the rate to 3e-5 by epoch 28, so longer runs mostly ran slower.
    ``"ema": true`` keeps a moving average of the weights (momentum ``ema_momentum``),
    scores val with it each epoch and ends on it: a smoother model than the last step's.
    """
    import keras

    ema = bool(cfg.get("ema"))
    rate = learning_rate(cfg, steps_per_epoch)
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if ema else []
    if isinstance(rate, float):
        callbacks += [keras.callbacks.EarlyStopping("val_accuracy", patience=5, restore_best_weights=True,
                                                    start_from_epoch=cfg.get("min_epochs", 0)),
                      keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2)]
    optimizer = keras.optimizers.Adam(rate, use_ema=ema, ema_momentum=cfg.get("ema_momentum", 0.99))
    return optimizer, callbacks


def learning_rate(cfg: dict, steps_per_epoch: int):
    """The config's rate: a number for ``"plateau"`` (callbacks move it), a per-step schedule for ``"cosine"``."""
    import keras

    rate, schedule = float(cfg.get("learning_rate", 2e-3)), cfg.get("schedule", "plateau")
    if schedule not in ("plateau", "cosine"):
        raise DatasetError(f"unknown schedule {schedule!r} (choose plateau or cosine)")
    if schedule == "plateau":
        return rate
    decay_steps = steps_per_epoch * max(cfg.get("epochs", 10) - 1, 1)
    return keras.optimizers.schedules.CosineDecay(rate / 10, decay_steps, warmup_target=rate,
                                                  warmup_steps=steps_per_epoch)


def finetune_on_real(model, splits: dict[str, Arrays], cfg: dict, policy: AugmentConfig) -> dict:
    """A few more epochs on real crops only, at a low learning rate, without class weights.

    Why: painted masks teach what "worn wrong" looks like, but they look painted,
    and with class weights the model learns their look as ``incorrect``: bare and
    masked real photos then come out ``incorrect``. A short pass over the real
    crops alone, in their own proportions, moves the model to real photos
    while keeping what the painted ones taught (models/HISTORY.md measures it).
    """
    import keras

    train, val = real_only(splits["train"]), real_only(splits["val"])
    if not len(train):
        raise DatasetError("finetune_epochs is set but there are no real (unpainted) training crops")
    keras.utils.set_random_seed(cfg.get("seed", 0))
    model.compile(keras.optimizers.Adam(cfg.get("finetune_learning_rate", 1e-4)), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(train_dataset(train, policy, cfg.get("batch_size", 64), cfg.get("seed", 0)),
                        validation_data=(val.x, val.y) if len(val) else None, epochs=cfg["finetune_epochs"], verbose=2)
    return history.history


def part_arrays(data: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten (N, 2) patches to N*2 samples; unknown targets (-1) get weight 0."""
    x = parts_input(data.patches)
    y = data.parts.reshape(-1)
    return x, np.clip(y, 0, 1), (y >= 0).astype(np.float32)


def fit_parts(splits: dict[str, Arrays], cfg: dict, out: Path):
    """The visibility model: one shared net for nose and mouth patches, mirrored copies added."""
    import keras

    from training.lib.model import parts_model

    keras.utils.set_random_seed(cfg.get("seed", 0))
    model = parts_model()
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy", weighted_metrics=["accuracy"])
    x, y, w = part_arrays(splits["train"])
    xv, yv, wv = part_arrays(splits["val"])
    callbacks = [keras.callbacks.EarlyStopping("val_loss", patience=3, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=1)]
    history = model.fit(x=np.concatenate([x, x[:, :, ::-1]]), y=np.concatenate([y, y]), sample_weight=np.concatenate([w, w]),
                        validation_data=(xv, yv, wv), epochs=cfg.get("parts_epochs", 8), batch_size=64,
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


def run(cfg: dict, out: Path, install: bool) -> dict:
    from training.recipe.export import export_checked

    out.mkdir(parents=True, exist_ok=True)
    name = cfg.get("policy", "all")
    policy = AugmentConfig.policy(name) if isinstance(name, str) else AugmentConfig(**name)
    splits = config_splits(cfg)
    if not len(splits["train"]) or not len(splits["val"]):
        raise DatasetError(f"too few crops to split: {({k: len(v) for k, v in splits.items()})}")
    print({k: len(v) for k, v in splits.items()})
    held = {r.source.split("#")[0]: name for name, arr in splits.items() for r in arr.records}
    (out / "splits.json").write_text(json.dumps(held, indent=0, sort_keys=True))
    real = {r.source.split("#")[0]: name for name, arr in splits.items() for r in arr.records if not is_painted(r)}
    start = time.perf_counter()
    if cfg.get("init"):  # fine-tune an earlier run's classifier instead of training one
        import keras

        classifier, hist_c = keras.models.load_model(cfg["init"]), {}
    else:
        classifier, hist_c = fit_classifier(splits, cfg, policy, out)
    hist_f = finetune_on_real(classifier, splits, cfg, policy) if cfg.get("finetune_epochs") else {}
    if hist_f:
        classifier.save(out / "mask_classifier.keras")
    train_seconds = time.perf_counter() - start
    parts, hist_p = fit_parts(splits, cfg, out) if cfg.get("parts_epochs", 8) else (None, {})
    curves = {"mask classifier": hist_c, "fine-tune on real crops": hist_f, "parts (nose / mouth visible)": hist_p}
    plot_curves({k: v for k, v in curves.items() if v}, out / "curves.png")
    test = splits["test"]
    probs = np.asarray(classifier.predict(test.x, verbose=0))
    metrics = {"config": cfg, "augment": policy.as_dict(), "train_seconds": round(train_seconds, 1),
               "epochs": len(hist_c.get("loss", [])), "finetune_epochs": len(hist_f.get("loss", [])),
               "sizes": {k: len(v) for k, v in splits.items()},
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
    p.add_argument("--init", type=Path, help="start from this Keras classifier (an earlier run's mask_classifier.keras) "
                   "instead of training one; with finetune_epochs, only the fine-tune on real crops runs")
    p.add_argument("--install", action="store_true", help="copy the ONNX files into models/")
    args = p.parse_args(argv)
    cfg = load_config(args.config)
    if cfg is None:
        return 2
    for key, value in (("policy", args.policy), ("epochs", args.epochs), ("parts_epochs", args.parts_epochs),
                       ("init", args.init and str(args.init))):
        if value is not None:
            cfg[key] = value
    if cfg.get("init") and not Path(cfg["init"]).is_file():
        print(f"error: no such model: {cfg['init']}", file=sys.stderr)
        return 2
    policy = cfg.get("policy", "all")
    out = args.out or Path(cfg["out"]) / (policy if isinstance(policy, str) else "custom")
    try:
        metrics = run(cfg, out, args.install)
    except DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    t = metrics["test"]
    print(f"test accuracy {t['accuracy']:.4f} on {t['n']} held-out crops; " +
          ", ".join(f"{k} recall {v['recall']:.3f}" for k, v in t["per_class"].items()) + f"; written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
