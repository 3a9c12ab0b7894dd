"""Image-quality metrics computed volume-wise exactly as fastMRI's evaluation does.

For a target volume ``gt`` and reconstruction ``pred`` (both ``(slices, H, W)`` real magnitude):

- NMSE = ``||gt - pred||² / ||gt||²`` over the whole volume;
- PSNR = ``10 log10(maxval² / MSE)`` over the whole volume, ``maxval = gt.max()``;
- SSIM = mean over slices of scikit-image's ``structural_similarity`` (7×7 uniform window,
  default constants) with ``data_range = gt.max()`` of the *volume*.

The test-suite checks these against the ``fastmri`` package's ``evaluate`` module.
"""

from __future__ import annotations

import numpy as np

from ..physics.crop import center_crop

__all__ = ["center_crop", "nmse", "psnr", "ssim", "volume_metrics"]


def _check_pair(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if np.iscomplexobj(gt) or np.iscomplexobj(pred):
        raise TypeError(f"metrics expect real (magnitude) images, got {gt.dtype} and {pred.dtype}")
    if gt.shape != pred.shape:
        raise ValueError(f"target shape {gt.shape} and reconstruction shape {pred.shape} differ")
    if gt.ndim != 3:
        raise ValueError(f"expected volumes (slices, H, W), got {gt.ndim} dims")
    return gt.astype(np.float64), pred.astype(np.float64)


def nmse(gt: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mean squared error over the volume ``(S, H, W)``."""
    gt, pred = _check_pair(gt, pred)
    return float(np.linalg.norm(gt - pred) ** 2 / np.linalg.norm(gt) ** 2)


def psnr(gt: np.ndarray, pred: np.ndarray, maxval: float | None = None) -> float:
    """Peak signal-to-noise ratio (dB) over the volume; ``maxval`` defaults to ``gt.max()``."""
    from skimage.metrics import peak_signal_noise_ratio

    gt, pred = _check_pair(gt, pred)
    return float(peak_signal_noise_ratio(gt, pred, data_range=gt.max() if maxval is None else maxval))


def ssim(gt: np.ndarray, pred: np.ndarray, maxval: float | None = None) -> float:
    """Mean slice-wise SSIM with the volume's data range (``gt.max()`` unless given)."""
    from skimage.metrics import structural_similarity

    gt, pred = _check_pair(gt, pred)
    rng = gt.max() if maxval is None else maxval
    return float(np.mean([structural_similarity(g, p, data_range=rng) for g, p in zip(gt, pred)]))


def volume_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """NMSE, PSNR and SSIM of a reconstruction volume against its target (fastMRI conventions).

    ``pred`` is centre-cropped to ``gt``'s in-plane size first when it is larger (as fastMRI
    crops reconstructions to the ``reconstruction_rss`` size).
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    if gt.ndim == 2:
        gt, pred = gt[None], pred[None] if pred.ndim == 2 else pred
    if pred.shape[-2:] != gt.shape[-2:]:
        pred = center_crop(pred, gt.shape[-2:])
    return {"NMSE": nmse(gt, pred), "PSNR": psnr(gt, pred), "SSIM": ssim(gt, pred)}
