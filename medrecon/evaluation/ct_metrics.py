"""CT image quality in Hounsfield units over a stated HU window, volume-wise.

Both volumes are clipped to ``window = (lo, hi)`` HU; then MAE and RMSE (HU) over all voxels,
PSNR with peak ``hi − lo`` and SSIM (scikit-image, 7×7, mean over slices) with data range
``hi − lo``. The window is part of the result so a number is never quoted without it.

With a ``mask`` (e.g. :func:`body_mask` of the target: the patient, not the air around it and
not the table), MAE, RMSE and PSNR are taken over the masked voxels and SSIM is the mean of
scikit-image's SSIM map over them (inside the border its mean leaves out); the air outside a body would otherwise inflate every score.
"""

from __future__ import annotations

import numpy as np

DEFAULT_WINDOW = (-1000.0, 1000.0)


BODY_THRESHOLD_HU = -500.0


def body_mask(hu: np.ndarray, threshold_hu: float = BODY_THRESHOLD_HU) -> np.ndarray:
    """The body in a CT volume ``(slices, rows, cols)``: per slice, the largest connected region
    above ``threshold_hu`` with its holes (lungs, bowel gas) filled; bool, same shape."""
    from scipy import ndimage

    out = np.zeros(hu.shape, bool)
    for k, sl in enumerate(np.asarray(hu)):
        labels, n = ndimage.label(sl > threshold_hu)
        if n:
            sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
            out[k] = ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))
    return out


def hu_metrics(
    target_hu: np.ndarray, recon_hu: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW, mask: np.ndarray | None = None
) -> dict[str, float]:
    """MAE, RMSE, PSNR, SSIM of ``recon_hu`` against ``target_hu`` (both ``(slices, rows, cols)``),
    over ``mask`` (bool, same shape) when given."""
    from skimage.metrics import structural_similarity

    lo, hi = float(window[0]), float(window[1])
    if not hi > lo:
        raise ValueError(f"window: expected lo < hi, got {window}")
    t = np.clip(np.asarray(target_hu, dtype=np.float64), lo, hi)
    r = np.clip(np.asarray(recon_hu, dtype=np.float64), lo, hi)
    if t.shape != r.shape or t.ndim != 3:
        raise ValueError(f"target {t.shape} and reconstruction {r.shape}: expected equal (slices, rows, cols) shapes")
    m = np.ones(t.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != t.shape or not m.any():
        raise ValueError(f"mask: expected a non-empty boolean volume of shape {t.shape}, got {m.shape} with {int(m.sum())} voxels")
    err = (r - t)[m]
    mse = float(np.mean(err**2))
    rng = hi - lo
    if mask is None:
        ssim = float(np.mean([structural_similarity(a, b, data_range=rng) for a, b in zip(t, r)]))
    else:
        ssim_map = np.stack([structural_similarity(a, b, data_range=rng, full=True)[1] for a, b in zip(t, r)])
        inner = (slice(None), slice(3, -3), slice(3, -3))  # skimage's mean leaves out the 7×7 window's border
        ssim = float(ssim_map[inner][m[inner]].mean()) if m[inner].any() else float(ssim_map[m].mean())
    return {
        "MAE_HU": float(np.mean(np.abs(err))),
        "RMSE_HU": mse**0.5,
        "PSNR": float(10 * np.log10(rng**2 / mse)) if mse > 0 else float("inf"),
        "SSIM": ssim,
        "window_lo_HU": lo,
        "window_hi_HU": hi,
        **({"voxels": int(m.sum())} if mask is not None else {}),
    }


def z_flicker(recon_hu: np.ndarray, target_hu: np.ndarray, mask: np.ndarray, window: tuple[float, float] = DEFAULT_WINDOW) -> float:
    """Slice-to-slice inconsistency (HU): mean ``|Δz recon − Δz target|`` over voxel pairs inside ``mask`` in both slices.

    What shows as steps or stripes across a sagittal or coronal reformat of a volume whose slices
    were made one by one; both volumes are clipped to ``window`` first.
    """
    r, t = np.clip(recon_hu, *window), np.clip(target_hu, *window)
    both = mask[1:] & mask[:-1]
    return float(np.abs(np.diff(r, axis=0) - np.diff(t, axis=0))[both].mean())
