"""Reading a photo safely: its size from the header first, a cap on pixels, large photos decoded small.

A file of a few hundred kilobytes can declare a 30000 x 30000 image (a
"decompression bomb"): decoding first and checking after would already have
spent gigabytes. Pillow reads the size from the header without decoding a
pixel; a photo over ``MAX_PIXELS`` is refused unread. One that is accepted but
large is decoded straight to at most ``MAX_SIDE`` pixels: OpenCV decodes a JPEG
at 1/2, 1/4 or 1/8 scale inside libjpeg, so a 6000 px photo never exists in
memory at full size. Faces are searched on a 1920 px copy anyway
(``PipelineConfig.search_side``), and ``MAX_SIDE`` keeps twice that for the
landmarks and crops; boxes go back to the photo's own pixels through ``scale``.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 50_000_000
"""Largest photo read (a 45 MP camera or a 50 MP phone photo passes); a larger declared size is refused unread."""
MAX_SIDE = 3840
"""Longest side a photo is analysed at; larger ones are decoded smaller."""
REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}
"""Decode-time reduction factors OpenCV offers (exact DCT scaling for JPEG, a resize after decoding otherwise)."""
ROTATED_ORIENTATIONS = {5, 6, 7, 8}
"""EXIF orientations that turn the picture a quarter turn: OpenCV applies them, so width and height swap."""


class ImageError(ValueError):
    """A photo that cannot or may not be read; ``too_large`` tells a size refusal from a broken file."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message)
        self.message, self.too_large = message, too_large


@dataclass
class Photo:
    """A decoded photo: ``image`` (BGR) is at most ``MAX_SIDE`` large, ``scale`` of the original's size."""

    image: np.ndarray
    width: int
    """The photo's own width, as shown (EXIF orientation applied), which boxes are reported in."""
    height: int
    format: str
    """Pillow's name of the format: JPEG, PNG, BMP, WEBP, TIFF."""

    @property
    def scale(self) -> float:
        """Pixels of ``image`` per pixel of the photo (1.0: decoded at full size)."""
        return self.image.shape[1] / self.width


def header(data: bytes | Path) -> tuple[int, int, str]:
    """(width, height, format) of an image as it will be shown, read from the header alone."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with warnings.catch_warnings():  # Pillow warns about large images; the cap below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height, fmt = img.width, img.height, img.format or "?"
                orientation = img.getexif().get(0x0112) if fmt in ("JPEG", "TIFF", "WEBP", "PNG") else None
    except Image.DecompressionBombError:  # Pillow's own, far higher cap
        raise ImageError(f"image too large: over {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels "
                         f"(limit {MAX_PIXELS:,} pixels)", too_large=True) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"not a readable image ({str(err) or type(err).__name__})") from None
    if orientation in ROTATED_ORIENTATIONS:
        width, height = height, width
    return width, height, fmt


def reduction(width: int, height: int, max_side: int) -> int:
    """The smallest decode-time factor (1, 2, 4 or 8) that brings the longest side to ``max_side`` or under."""
    for factor in REDUCED_FLAGS:
        if max(width, height) / factor <= max_side:
            return factor
    return 8


def load_photo(data: bytes | Path, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> Photo:
    """A photo's pixels, checked before decoding and decoded at most ``max_side`` large, or an ``ImageError``."""
    width, height, fmt = header(data)
    if width <= 0 or height <= 0:
        raise ImageError(f"the header declares an empty image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width}x{height} pixels (limit {max_pixels:,} pixels)", too_large=True)
    factor = reduction(width, height, max_side)
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.fromfile(data, np.uint8)
    try:
        image = cv2.imdecode(raw, REDUCED_FLAGS[factor])
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ImageError(f"could not decode the {fmt} image (corrupt or truncated)")
    longest = max(image.shape[:2])
    if longest > max_side:  # formats without decode-time scaling, or beyond 1/8
        shrink = max_side / longest
        size = (max(1, round(image.shape[1] * shrink)), max(1, round(image.shape[0] * shrink)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return Photo(image, width, height, fmt)
