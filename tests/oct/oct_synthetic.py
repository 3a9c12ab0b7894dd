"""A synthetic layered 'retina' B-scan with multiplicative speckle, for the OCT tests (no real data needed)."""

from __future__ import annotations

import numpy as np

VITREOUS = 50.0
# (thickness in pixels, grey level) from the inner limiting membrane down: nerve fibre layer, ganglion
# cell + inner plexiform layers, inner nuclear layer, outer plexiform layer, outer nuclear layer,
# photoreceptor / RPE complex, choroid
LAYERS = ((8, 170.0), (10, 110.0), (6, 80.0), (4, 120.0), (14, 70.0), (7, 200.0), (12, 120.0))
DEEP = 60.0


def clean_retina(h: int = 112, w: int = 192) -> np.ndarray:
    """``(h, w)`` float64 grey levels: vitreous, then the layers below a curved ILM with a foveal dip."""
    cols = np.arange(w)
    ilm = 22 + 4 * np.sin(2 * np.pi * cols / w) + 6 * np.exp(-(((cols - w / 2) / 12) ** 2))
    rows = np.arange(h)[:, None]
    img = np.full((h, w), DEEP)
    img[rows < ilm[None, :]] = VITREOUS
    top = ilm.copy()
    for thickness, level in LAYERS:
        img[(rows >= top[None, :]) & (rows < (top + thickness)[None, :])] = level
        top = top + thickness
    return img


def speckled(clean: np.ndarray, looks: float = 8.0, seed: int = 0) -> np.ndarray:
    """``clean`` × Gamma(looks, 1/looks) speckle (mean 1), rounded and clipped to uint8."""
    rng = np.random.default_rng(seed)
    noisy = clean * rng.gamma(looks, 1.0 / looks, size=clean.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def write_pair(folder, name: str = "case", seed: int = 0, n: int = 1):
    """Write ``NAME_test.tif`` (speckled uint8) and ``NAME_average.tif`` (clean uint8); returns their paths."""
    import tifffile

    clean = np.clip(np.rint(clean_retina()), 0, 255).astype(np.uint8)
    noisy = np.stack([speckled(clean.astype(float), seed=seed + k) for k in range(n)])
    test, avg = folder / f"{name}_test.tif", folder / f"{name}_average.tif"
    tifffile.imwrite(test, noisy[0] if n == 1 else noisy, photometric="minisblack")
    tifffile.imwrite(avg, clean if n == 1 else np.stack([clean] * n), photometric="minisblack")
    return test, avg
