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
