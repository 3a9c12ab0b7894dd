"""Classical PET reconstruction: MLEM / OSEM, a Gaussian post-filter, and MAP-EM with the relative-difference prior.

- OSEM (Hudson & Larkin 1994): ``x ← x / (A_sᵀ1) · A_sᵀ(y_s / (A_s x + r_s))`` over ordered subsets of
  views; one subset is MLEM (Shepp & Vardi 1982).
- MAP-EM: the one-step-late update of Green (1990) — as STIR's ``OSMAPOSL`` — with the penalty's
  gradient at the current image in the denominator: ``x ← x / (A_sᵀ1 + β ∇R(x)) · A_sᵀ(y_s / ȳ_s)``,
  the denominator kept at ≥ ``A_sᵀ1 / 5`` (OSL is not monotone and diverges for large β otherwise).
- R: the relative-difference prior (Nuyts et al., IEEE TNS 49:56, 2002) over the 8-neighbourhood,
  ``R(x) = ½ Σ_j Σ_k w_jk (x_j − x_k)² / (x_j + x_k + γ|x_j − x_k| + ε)``, ``w`` = 1 (edge) and
  1/√2 (diagonal) neighbours — the penalty of GE's Q.Clear.

Written here because the projector library (ASTRA) has no emission reconstruction and the package
must run on CPU and GPU tensors alike; the updates are pinned in ``tests/pet/test_pet_em.py`` (OSEM
with one subset equals MLEM, the RDP gradient equals autograd of R, convergence to the ML solution
of a consistent problem). The post-filter is MONAI's ``GaussianFilter``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...physics.pet import EmissionOperator

_NEIGHBOURS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 1 / math.sqrt(2)), (1, -1, 1 / math.sqrt(2)))  # each pair once


def subset_views(n_views: int, subsets: int) -> list[torch.Tensor]:
    """Interleaved view subsets ``[s, s + n, s + 2n, …]`` in a bit-reversal-like order (widely spaced)."""
    if not 1 <= subsets <= n_views:
        raise ValueError(f"subsets: expected 1..{n_views} (the number of views), got {subsets}")
    order, step = [0], subsets
    while len(order) < subsets:  # 0, n/2, n/4, 3n/4, … : consecutive subsets far apart in angle
        step = max(1, step // 2)
        order += [s for s in range(0, subsets, step) if s not in order]
    return [torch.arange(s, n_views, subsets) for s in order]


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``x`` moved by ``(dy, dx)`` pixels with edge replication (the border has no outside neighbour)."""
    h, w = x.shape[-2:]
    p = torch.nn.functional.pad(x[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    return p[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]


def rdp_penalty(x: torch.Tensor, gamma: float = 2.0, eps: float = 1e-9) -> torch.Tensor:
    """``R(x)`` per slice: ``(S,)`` for ``x`` of shape ``(S, H, W)`` (see the module docstring)."""
    total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    for dy, dx, w in _NEIGHBOURS:
        xk = _shift(x, dy, dx)
        d = x - xk
        total = total + w * (d * d / (x + xk + gamma * d.abs() + eps)).sum(dim=(-2, -1))
    return total


def rdp_gradient(x: torch.Tensor, gamma: float = 2.0, eps: float = 1e-9) -> torch.Tensor:
    """``∇R(x)``, ``(S, H, W)``: ``Σ_k w_jk d (x_j + 3x_k + γ|d|) / (x_j + x_k + γ|d|)²``, ``d = x_j − x_k``.

    Interior pixels; at the border the replicated neighbour gives ``d = 0`` (no contribution), which
    matches :func:`rdp_penalty` up to the border pixels (pinned against autograd on the interior).
    """
    g = torch.zeros_like(x)
    for dy, dx, w in _NEIGHBOURS:
        for sy, sx in ((dy, dx), (-dy, -dx)):  # the pair seen from both of its pixels
            xk = _shift(x, sy, sx)
            d = x - xk
            s = x + xk + gamma * d.abs() + eps
            g = g + w * d * (x + 3 * xk + gamma * d.abs()) / (s * s)
    return g


def _em_updates(
    op: EmissionOperator,
    counts: torch.Tensor,
    background: torch.Tensor,
    iterations: int,
    subsets: int,
    x0: torch.Tensor | None,
    beta: float,
    gamma: float,
    callback: Callable[[int, torch.Tensor], None] | None,
) -> torch.Tensor:
    if iterations < 1:
        raise ValueError(f"iterations: expected >= 1, got {iterations}")
    if counts.shape != background.shape:
        raise ValueError(f"background: expected the sinogram's shape {tuple(counts.shape)}, got {tuple(background.shape)}")
    n = counts.shape[0]
    views = subset_views(op.geometry.n_views, subsets)
    ops = [op if subsets == 1 else op.subset(v) for v in views]
    sens = [o.sensitivity(n) for o in ops]
    total = sum(sens)
    # β is relative to the mean sensitivity (Aᵀ1) over the pixels the scan sees, per slice: the
    # likelihood gradient Aᵀ(y/ȳ) − Aᵀ1 and ∇R (degree-0 homogeneous) then trade off independently
    # of the pixel size, the number of views and the count scale of the image
    seen = total > 1e-12 * total.amax(dim=(-2, -1), keepdim=True)
    scale = beta * (total * seen).sum(dim=(-2, -1), keepdim=True) / seen.sum(dim=(-2, -1), keepdim=True) / len(ops)
    x = torch.ones((n, *op.geometry.image_shape), dtype=torch.float32, device=counts.device) if x0 is None else x0.clone()
    if x0 is None:  # a uniform image with the data's total trues, so the first update is well scaled
        trues = (counts - background).clamp(min=0).sum(dim=(-2, -1))
        x = x * (trues / op(x).sum(dim=(-2, -1)).clamp(min=1e-12))[:, None, None]
    for it in range(iterations):
        for o, v, s in zip(ops, views, sens, strict=True):
            y_s, r_s = counts[..., v, :], background[..., v, :]
            ratio = y_s / (o(x) + r_s).clamp(min=1e-12)
            # OSL diverges where β∇R < −Aᵀ1 (large β next to edges): the denominator is kept ≥ Aᵀ1 / 5
            denom = s if beta == 0 else torch.maximum(s + scale * rdp_gradient(x, gamma), 0.2 * s)
            x = x * o.adjoint(ratio) / denom.clamp(min=1e-12)
            x = torch.where(s > 1e-12, x, torch.zeros_like(x)).clamp(min=0)
        if callback is not None:
            callback(it + 1, x)
    return x


def osem(
    op: EmissionOperator,
    counts: torch.Tensor,
    background: torch.Tensor,
    iterations: int = 4,
    subsets: int = 8,
    x0: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """OSEM (MLEM for ``subsets=1``).

    Args:
        op: the emission operator of the scan (normalisation × attenuation inside).
        counts: ``(S, V, D)`` float32 prompts; background ``(S, V, D)`` expected randoms + scatter.
        iterations: full passes over the data; subsets: ordered view subsets per pass.
        x0: optional positive start ``(S, H, W)``; default a uniform image with the data's trues.
        callback: called as ``callback(iteration, x)`` after each pass.

    Returns:
        Activity ``(S, H, W)`` float32 on the scale of ``op`` (counts per unit of ``A``).
    """
    return _em_updates(op, counts, background, iterations, subsets, x0, 0.0, 0.0, callback)


def map_em_rdp(
    op: EmissionOperator,
    counts: torch.Tensor,
    background: torch.Tensor,
    beta: float,
    gamma: float = 2.0,
    iterations: int = 10,
    subsets: int = 8,
    x0: torch.Tensor | None = None,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """MAP-EM with the relative-difference prior (one-step-late OSEM, as STIR's OSMAPOSL).

    ``beta`` weighs R against the Poisson log-likelihood, relative to the mean sensitivity ``Aᵀ1``
    over the field of view (so one value suits any pixel size, view count or calibration; it still
    depends on the count level, lower counts wanting more). ``gamma`` sets RDP's edge preservation.
    Arguments and returns otherwise as :func:`osem`.
    """
    if beta < 0 or gamma < 0:
        raise ValueError(f"beta / gamma: expected >= 0, got {beta} / {gamma}")
    return _em_updates(op, counts, background, iterations, subsets, x0, beta, gamma, callback)


def gaussian_postfilter(x: torch.Tensor, fwhm_mm: float, pixel_mm: float) -> torch.Tensor:
    """In-plane Gaussian filter of ``fwhm_mm`` on ``(S, H, W)`` images (MONAI ``GaussianFilter``)."""
    if fwhm_mm < 0:
        raise ValueError(f"fwhm_mm: expected >= 0, got {fwhm_mm}")
    if fwhm_mm == 0:
        return x
    from monai.networks.layers import GaussianFilter

    sigma = fwhm_mm / (2 * math.sqrt(2 * math.log(2))) / pixel_mm
    return GaussianFilter(spatial_dims=2, sigma=sigma, approx="sampled").to(x.device)(x[:, None])[:, 0]
