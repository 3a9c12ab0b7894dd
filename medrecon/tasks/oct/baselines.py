"""Classical OCT speckle denoisers — BM3D, non-local means, total variation — set from the noise level.

The denoising itself is the reference libraries' (``bm3d``; scikit-image's ``denoise_nl_means`` and
``denoise_tv_chambolle``); what is written here is the rule that sets each method's strength from
the σ estimated from each B-scan (:func:`method_parameters`) and the loop over a stack. All three
methods are scale-equivariant once their strength is proportional to σ, so B-scans of any bit
depth are denoised on their own scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...errors import InputFileError
from .config import OCTDenoiseConfig
from .noise import estimate_noise_sigmas

NOISE_FLOOR = 1e-6  # an estimated σ below this fraction of a B-scan's value range is rounding error: no noise


def method_parameters(method: str, sigma: float, cfg: OCTDenoiseConfig) -> dict[str, float | int]:
    """The keyword arguments of ``method``'s library call for noise level ``sigma`` (the rule of the settings)."""
    if method == "bm3d":
        return {"sigma_psd": cfg.bm3d_factor * sigma}
    if method == "nlm":
        return {
            "h": cfg.nlm_factor * sigma,
            "sigma": sigma,
            "patch_size": cfg.nlm_patch_size,
            "patch_distance": cfg.nlm_patch_distance,
            "fast_mode": True,
        }
    if method == "tv":
        return {"weight": cfg.tv_factor * sigma, "eps": 0.0, "max_num_iter": cfg.tv_iters}
    raise ValueError(f"method: expected one of bm3d, nlm, tv, got {method!r}")


def denoise_bscan(bscan: np.ndarray, sigma: float, cfg: OCTDenoiseConfig) -> np.ndarray:
    """Denoise one B-scan ``(H, W)`` with ``cfg.method`` at noise level ``sigma`` (stored units); ``(H, W)`` float32."""
    x = np.asarray(bscan, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"bscan: expected (H, W), got shape {x.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma: expected > 0, got {sigma}")
    kw = method_parameters(cfg.method, sigma, cfg)
    if cfg.method == "bm3d":
        import bm3d

        out = bm3d.bm3d(x, **kw)
    elif cfg.method == "nlm":
        from skimage.restoration import denoise_nl_means

        out = denoise_nl_means(x, **kw)
    else:
        from skimage.restoration import denoise_tv_chambolle

        out = denoise_tv_chambolle(x, **kw)
    return np.asarray(out, dtype=np.float32).reshape(x.shape)


def denoise_bscans(
    bscans: np.ndarray,
    cfg: OCTDenoiseConfig,
    source: str = "the input",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Denoise a stack ``(N, H, W)``; returns the result ``(N, H, W)`` float32 and σ per B-scan ``(N,)``.

    σ is ``cfg.sigma`` when set, else estimated from each B-scan. ``progress(done, total)`` is
    called after each B-scan.

    Raises:
        InputFileError: a B-scan without measurable noise (σ estimated below :data:`NOISE_FLOOR` of
            its value range: give ``sigma``); ``source`` names the input.
    """
    stack = np.asarray(bscans)
    if stack.ndim != 3:
        raise ValueError(f"bscans: expected (N, H, W), got shape {stack.shape}")
    sigmas = np.full(len(stack), cfg.sigma) if cfg.sigma is not None else estimate_noise_sigmas(stack)
    for n, s in enumerate(sigmas):
        if not s > NOISE_FLOOR * float(np.ptp(stack[n])):
            raise InputFileError(
                source, f"B-scan {n}", "noise measurable from the image (or give --sigma)", f"an estimated noise σ of {s:.3g}"
            )
    out = np.empty(stack.shape, dtype=np.float32)
    for n, b in enumerate(stack):
        out[n] = denoise_bscan(b, float(sigmas[n]), cfg)
        if progress is not None:
            progress(n + 1, len(stack))
    return out, sigmas
