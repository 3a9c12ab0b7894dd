"""Centre cropping of images, with fastMRI's offsets (reconstructions are cropped to the reference size)."""

from __future__ import annotations

import numpy as np


def center_crop(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre crop of the last two axes to ``shape``, with fastMRI's offsets ``(n - m) // 2``."""
    h, w = x.shape[-2:]
    if not (0 < shape[0] <= h and 0 < shape[1] <= w):
        raise ValueError(f"crop shape {tuple(shape)} does not fit inside image shape {(h, w)}")
    y0, x0 = (h - shape[0]) // 2, (w - shape[1]) // 2
    return x[..., y0 : y0 + shape[0], x0 : x0 + shape[1]]
