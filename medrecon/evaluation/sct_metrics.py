"""Synthetic-CT quality in Hounsfield units, as a radiotherapy physicist reads it.

Over a body mask (given, or the target's :func:`~medrecon.evaluation.ct_metrics.body_mask`):

- ``MAE_body_HU`` and ``ME_body_HU`` (mean error, recon − target: a bias shifts dose);
- ``MAE_bone_HU`` over the target's bone (above :data:`BONE_HU` inside the body) and ``Dice_bone``
  of the bone masks of target and recon (both above :data:`BONE_HU`);
- ``PSNR`` and ``SSIM`` with both volumes clipped to ``window`` (by default the full CT range
  [−1024, 3071] HU; the window is reported with them), SSIM over the mask as in
  :func:`~medrecon.evaluation.ct_metrics.hu_metrics`;
- per slice, ``MAE_body_HU`` (``per_slice``).

With the per-voxel std of several samples,
:func:`~medrecon.evaluation.uncertainty.std_calibration` over the body tells how far it tracks the error.
"""

from __future__ import annotations

import numpy as np

from .ct_metrics import body_mask, hu_metrics
from .uncertainty import std_calibration

BONE_HU = 250.0
CT_RANGE = (-1024.0, 3071.0)


def sct_metrics(
    target_hu: np.ndarray,
    recon_hu: np.ndarray,
    mask: np.ndarray | None = None,
    window: tuple[float, float] = CT_RANGE,
    std_hu: np.ndarray | None = None,
) -> dict:
    """The metrics of the module docstring for volumes ``(slices, rows, cols)`` in HU.

    Args:
        target_hu, recon_hu: the real CT and the synthetic one, same shape.
        mask: the body (bool, same shape); ``None``: the target's body mask.
        window: HU range of PSNR and SSIM.
        std_hu: per-voxel std of the samples (adds :func:`std_calibration` over the body).

    Returns:
        Scalars by name, plus ``per_slice``: ``{"MAE_body_HU": [...]}`` (NaN for a slice without body).

    Raises:
        ValueError: shapes that differ, or an empty mask.
    """
    t = np.asarray(target_hu, dtype=np.float64)
    r = np.asarray(recon_hu, dtype=np.float64)
    if t.shape != r.shape or t.ndim != 3:
        raise ValueError(f"target {t.shape} and synthetic CT {r.shape}: expected equal (slices, rows, cols) shapes")
    m = body_mask(t) if mask is None else np.asarray(mask, bool)
    if m.shape != t.shape or not m.any():
        raise ValueError(f"mask: expected a non-empty boolean volume of shape {t.shape}, got {m.shape} with {int(m.sum())} voxels")
    tc, rc = np.clip(t, *CT_RANGE), np.clip(r, *CT_RANGE)
    err = rc - tc
    bone_t, bone_r = (tc > BONE_HU) & m, (rc > BONE_HU) & m
    windowed = hu_metrics(t, r, window, m)
    per_slice = [float(np.abs(err[k][m[k]]).mean()) if m[k].any() else float("nan") for k in range(t.shape[0])]
    out = {
        "MAE_body_HU": float(np.abs(err[m]).mean()),
        "ME_body_HU": float(err[m].mean()),
        "MAE_bone_HU": float(np.abs(err[bone_t]).mean()) if bone_t.any() else None,
        "Dice_bone": float(2 * (bone_t & bone_r).sum() / (bone_t.sum() + bone_r.sum())) if (bone_t.any() or bone_r.any()) else None,
        "PSNR": windowed["PSNR"],
        "SSIM": windowed["SSIM"],
        "window_lo_HU": float(window[0]),
        "window_hi_HU": float(window[1]),
        "voxels": int(m.sum()),
    }
    if std_hu is not None:
        out.update(std_calibration(np.abs(err[m]), np.asarray(std_hu)[m]))
    out["per_slice"] = {"MAE_body_HU": per_slice}
    return out
