"""CT image quality in Hounsfield units over a stated HU window, volume-wise.

Both volumes are clipped to ``window = (lo, hi)`` HU; then MAE and RMSE (HU) over all voxels,
PSNR with peak ``hi − lo`` and SSIM (scikit-image, 7×7, mean over slices) with data range
``hi − lo``. The window is part of the result so a number is never quoted without it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_WINDOW = (-1000.0, 1000.0)


def hu_metrics(target_hu: np.ndarray, recon_hu: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW) -> dict[str, float]:
    """MAE, RMSE, PSNR, SSIM of ``recon_hu`` against ``target_hu`` (both ``(slices, rows, cols)``)."""
    from skimage.metrics import structural_similarity

    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f"window: expected lo < hi, got {window}")
    t = np.clip(np.asarray(target_hu, dtype=np.float64), lo, hi)
    r = np.clip(np.asarray(recon_hu, dtype=np.float64), lo, hi)
    if t.shape != r.shape or t.ndim != 3:
        raise ValueError(f"target {t.shape} and reconstruction {r.shape}: expected equal (slices, rows, cols) shapes")
    err = r - t
    mse = float(np.mean(err**2))
    rng = hi - lo
    return {
        "MAE_HU": float(np.mean(np.abs(err))),
        "RMSE_HU": mse**0.5,
        "PSNR": float(10 * np.log10(rng**2 / mse)) if mse > 0 else float("inf"),
        "SSIM": float(np.mean([structural_similarity(a, b, data_range=rng) for a, b in zip(t, r)])),
        "window_lo_HU": lo,
        "window_hi_HU": hi,
    }
