"""The small Keras networks the detector ships (as ONNX).

Both are plain conv stacks: a few hundred thousand weights at most, well
under 2 MB and a fraction of a millisecond per face on a laptop CPU.
"""

from __future__ import annotations

import keras
from keras import layers

from detector.align import MODEL_SIZE, NECK_SIZE, PATCH_SIZE
from detector.types import LABELS


def _block(x, filters: int, pool: bool = True):
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)  # few steps per epoch: track batch statistics quickly
        x = layers.ReLU()(x)
    return layers.MaxPooling2D()(x) if pool else x


def mask_classifier(width: int = 16, dropout: float = 0.3, size: int = MODEL_SIZE) -> keras.Model:
    """Aligned grayscale face (size² x 1, in [0, 1]) -> probabilities over LABELS."""
    inputs = keras.Input((size, size, 1), name="face")
    x = inputs
    for i, filters in enumerate((width, width * 2, width * 4, width * 8)):
        x = _block(x, filters, pool=i < 3)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(len(LABELS), activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="mask_classifier")


def parts_model(width: int = 12) -> keras.Model:
    """Nose or mouth patch (PATCH_SIZE² x 1) -> probability that the part is visible."""
    return _patch_net(width, "parts", "visible", PATCH_SIZE)


def neck_model(width: int = 12) -> keras.Model:
    """Patch under the chin (NECK_SIZE² x 1) -> probability that a mask is there."""
    return _patch_net(width, "neck", "masked", NECK_SIZE)


def _patch_net(width: int, name: str, output: str, size: int) -> keras.Model:
    inputs = keras.Input((size, size, 1), name="patch")
    x = inputs
    for i, filters in enumerate((width, width * 2, width * 4)):
        x = _block(x, filters, pool=i < 2)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(1, activation="sigmoid", name=output)(x)
    return keras.Model(inputs, outputs, name=name)
