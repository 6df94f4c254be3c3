"""Contact sheets: many small pictures in one PNG, for a person to look at."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def around(image: np.ndarray, box, pad_x: float, pad_y: float) -> np.ndarray:
    """The part of ``image`` in ``box`` (x1, y1, x2, y2) with ``pad_x`` / ``pad_y`` pixels more each way,
    clipped to the image: a face with room for what shows around it, as a sheet's tile."""
    x1, y1, x2, y2 = box
    h, w = image.shape[:2]
    return image[max(int(y1 - pad_y), 0) : min(int(y2 + pad_y), h), max(int(x1 - pad_x), 0) : min(int(x2 + pad_x), w)]


def contact_sheet(images: list[np.ndarray | None], captions: list[str], path: Path, tile: int = 96, cols: int = 8) -> Path:
    """Write a grid of ``images`` (gray or BGR) with a caption under each; None (an unreadable file) stays blank."""
    cell_h = tile + 14
    rows = max(1, (len(images) + cols - 1) // cols)
    sheet = np.full((rows * cell_h, cols * tile, 3), 255, np.uint8)
    for i, (img, cap) in enumerate(zip(images, captions)):
        r, c = divmod(i, cols)
        if img is not None:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img
            sheet[r * cell_h : r * cell_h + tile, c * tile : (c + 1) * tile] = cv2.resize(img, (tile, tile))
        cv2.putText(sheet, cap[:22], (c * tile + 2, r * cell_h + tile + 11), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1)
    cv2.imwrite(str(path), sheet)
    return path
