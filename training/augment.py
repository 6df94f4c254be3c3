"""Augmentation for the training input pipeline, each kind on or off by config.

Built from Keras preprocessing layers (nothing hand-written that Keras already
does) and applied in ``tf.data`` to the aligned crops, before they are resized
to the model input, so every transform sees the full crop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers


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
        """The named policies compared in the model card."""
        geometric = {"flip": True, "scale": 0.2, "rotate": 25.0, "translate": 0.08}
        policies = {
            "none": {},
            "flip": {"flip": True},
            "geometric": geometric,
            "all": {**geometric, "noise": 0.03, "brightness": 0.3, "resize": 0.3},
        }
        if name not in policies:
            raise ValueError(f"unknown augmentation policy {name!r}; one of {sorted(policies)}")
        return cls(**policies[name])

    def as_dict(self) -> dict:
        return asdict(self)


def augmenter(config: AugmentConfig, seed: int = 0) -> keras.Sequential:
    """A Keras model that applies the configured transforms when ``training=True``."""
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
