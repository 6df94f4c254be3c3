"""Fine-tune MTCNN's face/non-face scoring on masked faces; export ``<net>_masked.onnx``.

Why: the package's nets learned faces with a visible nose and mouth, so masked
faces score low at every stage, and no threshold or border trick recovers
masked faces in crowded scenes. The final face-classification layer of each
net (PNet ``conv4-2``, RNet ``fc5-2``, ONet ``fc6-3``) and the last shared layer
below it (PNet ``conv3``, RNet ``fc4``, ONet ``fc5``, with their PReLUs) are
trained by Adam, while distillation keeps the box and landmark outputs where
they were (the regression heads stay frozen). Refitting the head alone, or
every layer, did worse (docs/decisions.md).
The architecture and cost per frame stay the same, and bare faces stay faces
because they are in the training data too.

Training data, TRAIN split only (``training.tools.recall.load_eval_set``):
positives are jittered squares (IoU >= 0.65) around scene label boxes (every
label), around the boxes a lenient cascade finds in the still photos, and, in
tight-crop folders (``--tight``) where it finds none, around the centred
square of the crop (the hard, eyes-to-chin positives); negatives are random
squares and the cascade's own proposals that overlap no labelled face
(IoU < 0.3) in scene photos and, with ``--crops``, in face-free scene crops
grown by the still path's replicate borders (their centred squares too: the
tight positives' shape on no face). ``--mine DIR`` takes those proposals from
a previous round's nets. ``--soft P`` also learns a share P of the photos
softened, as a far camera takes them (``mtcnn_patches.soften``). The
patches are cut in ``training.recipe.mtcnn_patches``.

Usage: ``python -m training finetune_mtcnn [--data ../shared/data] [--out models/mtcnn] [--splits S] ...``
The shipped ``*_masked.onnx`` are two rounds (about 2 + 3 minutes on 2 cores) on the train side of
``models/splits.json``, the classifier's split, so the photos that judge the whole detector
(``training.recipe.evaluate --splits models/splits.json``) are held out for both models::

    python -m training finetune_mtcnn --splits models/splits.json --out /tmp/round1
    cp /tmp/round1/pnet_masked.onnx models/mtcnn/
    python -m training finetune_mtcnn --crops 6 --negatives 40 --epochs 16 \
        --splits models/splits.json --mine /tmp/round1 --nets rnet onet

(round 1's PNet ships; RNet and ONet are refit on negatives mined with round 1's nets.)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.lib.finder_photos import CROWDS, SCENES, load_eval_set
from training.lib.splits import read_held
from training.recipe.export_mtcnn import TOLERANCE, build_keras_net, max_difference, save_onnx
from training.recipe.mtcnn_patches import SIZES, TIGHT_FOLDERS, collect

HEADS = {"pnet": "conv4-2", "rnet": "fc5-2", "onet": "fc6-3"}
TRUNKS = {"pnet": ("conv3", "prelu3"), "rnet": ("fc4", "prelu4"), "onet": ("fc5", "prelu5")}
"""The last shared layer of each net: trained with the face head."""
REGS = {"pnet": ("conv4-1",), "rnet": ("fc5-1",), "onet": ("fc6-1", "fc6-2")}
"""Box (and landmark) outputs, kept unchanged by distillation when the trunk moves."""


def features(model, name: str, x: np.ndarray, batch: int = 2048, stop: str | None = None) -> np.ndarray:
    """The input of layer ``stop`` (default: of the classification head): every layer up to it, in order."""
    stop = stop or default_stop(name)
    out = []
    for i in range(0, len(x), batch):
        h = x[i : i + batch]
        for layer in model.layers:
            if layer.name == stop:
                break
            h = layer(h)
        out.append(np.asarray(h))
    return np.concatenate(out).reshape(len(x), -1) if stop == default_stop(name) else np.concatenate(out)


def default_stop(name: str) -> str:
    """The first layer of a net's face/non-face head."""
    return {"pnet": "conv4-1", "rnet": "fc5-1", "onet": "fc6-1"}[name]


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Per-sample weights giving faces (y = 1) and background half the total each."""
    return np.where(y == 1, 0.5 / max(y.mean(), 1e-6), 0.5 / max(1 - y.mean(), 1e-6))


def trunk_layers(model, name: str) -> list:
    """The layers trained below the heads: from the last shared one (``TRUNKS``) to the heads."""
    names = [layer.name for layer in model.layers]
    end = min(names.index(n) for n in (*REGS[name], HEADS[name]))
    return model.layers[names.index(TRUNKS[name][0]) : end]


def refit_dense(name: str, x: np.ndarray, y: np.ndarray, l2: float, lr: float, epochs: int,
                distill: float, seed: int = 0, batch: int = 256):
    """The package's net with its last trunk layer (``TRUNKS``) and face head trained by Adam.

    Loss: class-balanced cross-entropy on the face score, plus ``distill`` times the
    squared change of the box (and landmark) outputs on every patch, so regression
    keeps working on a trunk it was not refit for, plus ``l2`` times the squared
    change of the trained weights. Returns (model, before, after) train accuracies.
    """
    import tensorflow as tf

    model = build_keras_net(name)
    layers = {layer.name: layer for layer in model.layers}
    trunk = trunk_layers(model, name)
    regs, head = [layers[n] for n in REGS[name]], layers[HEADS[name]]
    feats = features(model, name, x, stop=trunk[0].name).astype(np.float32)

    def forward(h):
        for layer in trunk:
            h = layer(h)
        return tf.reshape(head(h), (-1, 2))[:, 1], tf.concat([tf.reshape(r(h), (tf.shape(h)[0], -1)) for r in regs], axis=1)

    def scores(batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        out = [forward(feats[i : i + batch_size]) for i in range(0, len(feats), batch_size)]
        return np.concatenate([np.asarray(p) for p, _ in out]), np.concatenate([np.asarray(r) for _, r in out])

    p0, reg0 = scores()
    variables = [v for layer in (*trunk, head) for v in layer.trainable_variables]
    adam_fit(name, forward, variables, feats, y, reg0, l2=l2, lr=lr, epochs=epochs, distill=distill, seed=seed,
             batch=batch)
    p1, reg1 = scores()
    accuracy = lambda p: {c: float(((p[y == c] > 0.5) == c).mean()) for c in (0, 1)}
    print(f"{name}: mean |box change| {np.abs(reg1 - reg0).mean():.4f}")
    return model, accuracy(p0), accuracy(p1)


def adam_fit(name: str, forward, variables: list, feats: np.ndarray, y: np.ndarray, reg0: np.ndarray, *,
             l2: float, lr: float, epochs: int, distill: float, seed: int, batch: int) -> None:
    """Train ``variables`` in place by Adam on the loss ``refit_dense`` describes: class-balanced
    cross-entropy on ``forward``'s face score, plus the two pulls that keep the net what it was (its box
    outputs ``reg0`` and its starting weights)."""
    import tensorflow as tf

    start = [tf.constant(v.numpy()) for v in variables]
    weight = balanced_weights(y).astype(np.float32)
    optimizer = tf.keras.optimizers.Adam(lr)
    rng = np.random.default_rng(seed)

    @tf.function
    def step(h, t, w, r0):
        with tf.GradientTape() as tape:
            p, r = forward(h)
            p = tf.clip_by_value(p, 1e-7, 1 - 1e-7)
            ce = -tf.reduce_mean(w * (t * tf.math.log(p) + (1 - t) * tf.math.log(1 - p)))
            keep = tf.reduce_mean(tf.reduce_sum(tf.square(r - r0), axis=1))
            pull = tf.add_n([tf.reduce_sum(tf.square(v - v0)) for v, v0 in zip(variables, start)])
            loss = ce + distill * keep + l2 * pull
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    yf = y.astype(np.float32)
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        losses = [float(step(feats[i], yf[i], weight[i], reg0[i])) for i in np.array_split(order, max(1, len(y) // batch))]
        print(f"{name} epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}")


def export(model, name: str, path: Path) -> float:
    """The refit net to ONNX as ``export_mtcnn`` writes the stock ones; returns the max |ONNX - Keras|."""
    save_onnx(model, name, path)
    return max_difference(name, model, path)


@dataclass
class RefitConfig:
    """One refit round; the command line's flags are its fields, and ``training.recipe.full`` builds one per round."""

    data: Path = Path("../shared/data")
    out: Path = Path("models/mtcnn")
    nets: tuple[str, ...] = ("pnet", "rnet", "onet")
    splits: Path | None = None
    """A classifier's splits.json: refit on its train side only, so its val and test stay unseen."""
    limit: int | None = None
    jitters: int = 4
    negatives: int = 30
    crops: int = 0
    """Face-free crops per train scene, border-grown, as negatives."""
    mine: Path | None = None
    """A previous round's folder of ``*_masked.onnx``: hard negatives are mined with them."""
    tight: tuple[str, ...] = TIGHT_FOLDERS
    scenes: tuple[str, ...] = (SCENES,)
    """Scene sets (photos with labelled boxes) whose train side gives faces and hard negatives."""
    soft: float = 0.0
    l2: float = 1e-5
    lr: float = 1e-4
    epochs: int = 8
    distill: float = 10.0
    cache: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.soft <= 1.0:
            raise ValueError(f"--soft must be between 0 and 1, not {self.soft}")
        unknown = sorted(set(self.nets) - set(SIZES))
        if unknown:
            raise ValueError(f"unknown net {unknown[0]!r}; one of {', '.join(SIZES)}")


def patches(config: RefitConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each net's training patches and labels: from ``cache`` where it exists, else cut from the
    train photos (and saved there); OSError or ValueError when the data or split cannot be read."""
    if config.cache and config.cache.is_file():
        saved = np.load(config.cache)
        return {n: (saved[f"{n}_x"], saved[f"{n}_y"]) for n in SIZES}
    data = load_eval_set(config.data, "train", config.limit, config.seed, held=read_held(config.splits),
                         scene_sets=tuple(config.scenes))
    rng = np.random.default_rng(config.seed)
    sets = collect(data, rng, config.jitters, config.negatives, tuple(config.tight), config.crops, config.mine, config.soft)
    if config.cache:
        np.savez(config.cache, **{f"{n}_{k}": v for n, (x, y) in sets.items() for k, v in (("x", x), ("y", y))})
    return sets


def run(config: RefitConfig) -> dict[str, float]:
    """Collect patches from the train split, refit each net, export and check it; each net's max
    |ONNX - Keras|. OSError or ValueError when the data or split cannot be read."""
    sets = patches(config)
    config.out.mkdir(parents=True, exist_ok=True)
    diffs = {}
    for name in config.nets:
        x, y = sets[name]
        model, before, after = refit_dense(name, x, y, config.l2, config.lr, config.epochs, config.distill, config.seed)
        path = config.out / f"{name}_masked.onnx"
        diffs[name] = export(model, name, path)
        print(f"{name}: {len(y)} patches ({int(y.sum())} faces); train accuracy face/background "
              f"{before[1]:.3f}/{before[0]:.3f} -> {after[1]:.3f}/{after[0]:.3f}; {path} max diff {diffs[name]:.1e}")
    return diffs


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m training finetune_mtcnn``: ``RefitConfig``'s fields, with its defaults."""
    d = RefitConfig()
    parser = argparse.ArgumentParser(prog="python -m training finetune_mtcnn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=d.data, help="datasets root (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=d.out, help="folder for <net>_masked.onnx")
    parser.add_argument("--nets", nargs="+", default=list(d.nets), choices=list(SIZES), help="nets to refit")
    parser.add_argument("--limit", type=int, help="at most N train photos per folder (and N scenes)")
    parser.add_argument("--jitters", type=int, default=d.jitters, help="positive squares per face (default: %(default)s)")
    parser.add_argument("--negatives", type=int, default=d.negatives, help="hard + random negatives per scene, each")
    parser.add_argument("--l2", type=float, default=d.l2, help="pull toward the shipped weights (default: %(default)s)")
    parser.add_argument("--cache", type=Path, help="save the patches here (.npz), or load them if it exists")
    parser.add_argument("--lr", type=float, default=d.lr, help="Adam step (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="epochs (default: %(default)s)")
    parser.add_argument("--distill", type=float, default=d.distill,
                        help="weight keeping box outputs unchanged (default: %(default)s)")
    parser.add_argument("--tight", nargs="*", default=list(d.tight),
                        help="folders of tight crops: a face the lenient cascade misses there is the centred square")
    parser.add_argument("--scenes", nargs="+", default=list(d.scenes),
                        help=f"scene sets of --data whose train photos give faces and hard negatives "
                             f"(default: %(default)s; {CROWDS} adds crowds of small faces)")
    parser.add_argument("--crops", type=int, default=d.crops,
                        help="face-free crops per train scene, border-grown, as negatives (default: %(default)s)")
    parser.add_argument("--mine", type=Path, help="folder of a previous round's *_masked.onnx: mine hard negatives with them")
    parser.add_argument("--splits", type=Path,
                        help="a classifier's splits.json: refit on its train side only, so its val and test stay unseen")
    parser.add_argument("--soft", type=float, default=d.soft,
                        help="share of train photos also learned softened, as a far camera sees them (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The refit as the command line asks; exit 1 when an export strays from Keras beyond the tolerance."""
    args = build_parser().parse_args(argv)
    try:
        config = RefitConfig(**{**vars(args), "nets": tuple(args.nets), "tight": tuple(args.tight),
                                 "scenes": tuple(args.scenes)})
        diffs = run(config)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if max(diffs.values(), default=0.0) > TOLERANCE else 0


if __name__ == "__main__":
    sys.exit(main())
