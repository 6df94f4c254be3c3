"""Augmentation for the training input pipeline, each kind on or off by config.

Built from Keras preprocessing layers (nothing hand-written that Keras already
does) and applied in ``tf.data`` to the aligned crops, before they are resized
to the model input, so every transform sees the full crop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Keras is imported where the augmenter is built: --help of every training command stays instant
    import keras

_GEOMETRIC = {"flip": True, "scale": 0.2, "rotate": 25.0, "translate": 0.08}
POLICIES: dict[str, dict] = {
    "none": {},
    "flip": {"flip": True},
    "geometric": _GEOMETRIC,
    "all": {**_GEOMETRIC, "noise": 0.03, "brightness": 0.3, "resize": 0.3},
}
"""The named policies compared in the model card, in the order of its table."""


@dataclass
class AugmentConfig:
    flip: bool = False
    scale: float = 0.0
    """Random zoom of up to this share in or out (0.1-0.3 is useful)."""
    rotate: float = 0.0
    """Random rotation of up to this many degrees either way (20-30 is useful)."""
    translate: float = 0.0
    """Random shift of up to this share of the side."""
    noise: float = 0.0
    """Gaussian noise sigma, on the [0, 1] scale."""
    brightness: float = 0.0
    """Random brightness change of up to this share; contrast changes with it."""
    resize: float = 0.0
    """Up to this share of crops are blurred by shrinking and re-growing (small, far faces)."""
    frame: float = 0.0
    """This share of crops are cut as if the photo ended inside the face (see ``frame_cut``)."""

    @classmethod
    def policy(cls, name: str) -> AugmentConfig:
        """One of ``POLICIES`` by name."""
        if name not in POLICIES:
            raise ValueError(f"unknown augmentation policy {name!r}; one of {sorted(POLICIES)}")
        return cls(**POLICIES[name])

    def as_dict(self) -> dict:
        return asdict(self)


def augmenter(config: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """A Keras model that applies the configured transforms when ``training=True``."""
    import keras
    from keras import layers

    steps: list[layers.Layer] = []
    fill = {"fill_mode": "reflect"}
    if config.flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed))
    if config.rotate:
        steps.append(layers.RandomRotation(config.rotate / 360.0, seed=seed + 1, **fill))
    if config.scale:
        steps.append(layers.RandomZoom((-config.scale, config.scale), seed=seed + 2, **fill))
    if config.translate:
        steps.append(layers.RandomTranslation(config.translate, config.translate, seed=seed + 3, **fill))
    if config.brightness:
        steps.append(layers.RandomBrightness(config.brightness, value_range=(0.0, 1.0), seed=seed + 4))
        steps.append(layers.RandomContrast(config.brightness, seed=seed + 5))
    if config.noise:
        steps.append(layers.GaussianNoise(config.noise, seed=seed + 6))
    return keras.Sequential(steps, name="augment")


FRAME_BANDS = {"top": (0.0, 0.15), "left": (0.0, 0.2), "right": (0.8, 1.0), "bottom": (0.7, 1.0)}
"""Where a photo's edge may fall in the aligned crop, as fractions of its side."""
CHIN_KEPT = 0.88
"""The highest a bottom edge may cut an ``incorrect`` face: a mask on the chin stays in view."""


def frame_cut(x, y, share: float, incorrect: int):
    """Cut a share of a batch of crops (B, S, S, 1) as tight photos are cut, labels in y.

    Why: a photo cropped to the face ends inside the aligned crop, and
    ``align_face`` fills what lies outside with the face's mean grey; tight
    bare and masked photos are the ones called ``incorrect``, as if the grey
    band were a mask on the chin. Cutting every class the same way (each
    side on or off at random, at a random depth) should make the band mean
    nothing. An ``incorrect`` face is cut no higher than ``CHIN_KEPT`` from
    the bottom, so the mask that makes it incorrect is never cut away.
    Measured, it did not help (models/HISTORY.md): off by default.
    """
    import tensorflow as tf

    b, s = tf.shape(x)[0], tf.shape(x)[1]

    def edge(side: str, low: float | tf.Tensor, high: float) -> tf.Tensor:
        at = tf.random.uniform([b, 1, 1, 1], 0.0, 1.0) * (high - low) + low
        on = tf.random.uniform([b, 1, 1, 1]) < 0.5
        return tf.where(on, at, 0.0 if side in ("top", "left") else 1.0)

    bottom_low = tf.where(tf.reshape(tf.cast(y, tf.int32), [-1, 1, 1, 1]) == incorrect, CHIN_KEPT, FRAME_BANDS["bottom"][0])
    top, left = edge("top", *FRAME_BANDS["top"]), edge("left", *FRAME_BANDS["left"])
    right, bottom = edge("right", *FRAME_BANDS["right"]), edge("bottom", bottom_low, FRAME_BANDS["bottom"][1])
    at = (tf.cast(tf.range(s), tf.float32) + 0.5) / tf.cast(s, tf.float32)
    rows, cols = tf.reshape(at, [1, -1, 1, 1]), tf.reshape(at, [1, 1, -1, 1])
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)
    inside = inside | (tf.random.uniform([b, 1, 1, 1]) >= share)  # the rest of the batch is left whole
    kept = tf.cast(inside, x.dtype)
    area = tf.maximum(tf.reduce_sum(kept, axis=[1, 2, 3], keepdims=True), 1.0)
    mean = tf.reduce_sum(x * kept, axis=[1, 2, 3], keepdims=True) / area
    return tf.where(inside, x, mean)


def shrink_blur(x, share: float):
    """Shrink a share of a batch of crops (B, S, S, 1) to 30-70 % and grow it back.

    Why: a far face reaches the crop from a few dozen pixels and is upscaled
    into it, soft; a model trained on sharp crops alone has never seen that.
    """
    import tensorflow as tf

    size = tf.shape(x)[1]
    small = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], 0.3, 0.7), tf.int32)
    soft = tf.image.resize(tf.image.resize(x, [small, small], "area"), [size, size], "bilinear")
    keep = tf.cast(tf.random.uniform([tf.shape(x)[0], 1, 1, 1]) >= share, x.dtype)
    return keep * x + (1 - keep) * soft
