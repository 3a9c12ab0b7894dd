"""Classical multi-coil MRI reconstructions on the shared SENSE operator.

All functions take batched 2-D data:

- ``kspace``: ``(B, C, H, W)`` complex64, zeros where not sampled;
- ``maps``: ``(B or 1, C, H, W)`` complex coil sensitivities;
- ``mask``: real, broadcastable to ``kspace`` (``(B or 1, 1, 1 or H, W)``).

Regularisation weights are relative: the data are scaled so that the zero-filled SENSE image has
unit maximum magnitude before solving, and the result is scaled back. A weight tuned on one
image therefore transfers to another.
"""

from __future__ import annotations

import numpy as np
import torch

from ...physics.fft import ifftc
from ...physics.mri.coils import coil_combine, rss
from ...physics.mri.sense import SenseOperator
from ...solvers.cg import conjugate_gradient


def zero_filled(kspace: torch.Tensor, maps: torch.Tensor | None = None) -> torch.Tensor:
    """Zero-filled reconstruction.

    Args:
        kspace: ``(B, C, H, W)`` complex.
        maps: optional coil maps; without them the root-sum-of-squares of the coil images is
            returned (fastMRI's baseline), with them the complex SENSE combination ``Σ conj(S) x``.

    Returns:
        ``(B, H, W)``: real (RSS) without maps, complex with maps.
    """
    coil_images = ifftc(kspace)
    if maps is None:
        return rss(coil_images, dim=1)
    return coil_combine(coil_images, maps.to(coil_images.dtype), dim=1)


def _scaled_adjoint(op: SenseOperator, kspace: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``Aᴴy`` divided by its per-item maximum magnitude, and that scale ``(B, 1, 1, 1)`` (1 for all-zero data)."""
    aty = op.adjoint(kspace)
    s = torch.amax(torch.abs(aty).reshape(aty.shape[0], -1), dim=1)
    s = torch.where(s > 0, s, torch.ones_like(s)).reshape(-1, 1, 1, 1)
    return aty / s[:, 0], s


def cg_sense(kspace: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor, lam: float, iters: int) -> torch.Tensor:
    """CG-SENSE with Tikhonov regularisation: ``argmin_x ||M F S x - y||² + λ ||x||²``.

    Solves the normal equations ``(AᴴA + λI) x = Aᴴy`` with the shared complex CG.

    Returns:
        ``(B, H, W)`` complex image, same scale as the data.
    """
    if lam < 0:
        raise ValueError(f"lam: expected >= 0, got {lam}")
    op = SenseOperator(maps.to(kspace.dtype), mask)
    rhs, scale = _scaled_adjoint(op, kspace)
    x = conjugate_gradient(op.normal, rhs, iters=iters, damping=lam)
    return x * scale[:, 0]


def cs_l1_wavelet(
    kspace: torch.Tensor,
    maps: torch.Tensor,
    mask: torch.Tensor,
    lam: float,
    iters: int,
    wave_name: str = "db4",
) -> torch.Tensor:
    """L1-wavelet compressed sensing through SigPy (``sigpy.mri.app.L1WaveletRecon``), slice by slice.

    Solves ``argmin_x ½||M F S x - y||² + λ ||Ψ x||₁`` with SigPy's FISTA / proximal gradient.
    Runs on the CPU with NumPy, or on the GPU through CuPy when the input tensors are on CUDA and
    CuPy is installed (otherwise CUDA inputs are solved on the CPU and the result moved back).

    Returns:
        ``(B, H, W)`` complex image, same scale and device as the data.
    """
    import sigpy as sp
    import sigpy.mri

    if lam < 0:
        raise ValueError(f"lam: expected >= 0, got {lam}")
    _, scale = _scaled_adjoint(SenseOperator(maps.to(kspace.dtype), mask), kspace)
    y = (kspace / scale).detach()
    mask_b = torch.broadcast_to(mask, kspace.shape)[:, 0]  # (B, H, W)
    maps_b = torch.broadcast_to(maps, kspace.shape)
    # SigPy computes on the GPU only through CuPy; without it, CUDA inputs are solved on the CPU
    on_gpu = kspace.is_cuda and bool(getattr(sp.config, "cupy_enabled", False))
    dev = sp.Device(kspace.device.index or 0) if on_gpu else sp.cpu_device
    out = []
    # SigPy sets the step size by a power iteration from an unseeded np.random start; seeded per
    # slice here (the caller's global state restored), so a reconstruction is the same in every
    # process and every batch (a resumed folder run writes identical files).
    state = np.random.get_state()
    try:
        for b in range(kspace.shape[0]):
            np.random.seed(0)
            dev.xp.random.seed(0)  # CuPy's generator on a GPU (NumPy's again on the CPU)
            out.append(_l1_wavelet_slice(sp, y[b], maps_b[b], mask_b[b], lam, wave_name, iters, dev))
    finally:
        np.random.set_state(state)
    return torch.stack(out).to(kspace.device) * scale[:, 0]


def _l1_wavelet_slice(sp, y, maps, mask, lam: float, wave_name: str, iters: int, dev) -> torch.Tensor:
    """One slice of :func:`cs_l1_wavelet`: ``y`` (C, H, W), ``maps`` (C, H, W), ``mask`` (H, W) → (H, W) complex."""
    import sigpy.mri

    yb = sp.to_device(y.cpu().numpy().astype(np.complex64), dev)
    sb = sp.to_device(maps.detach().cpu().numpy().astype(np.complex64), dev)
    wb = sp.to_device((mask.detach().cpu().numpy() > 0).astype(np.float32), dev)
    app = sigpy.mri.app.L1WaveletRecon(yb, sb, lam, weights=wb, wave_name=wave_name, max_iter=iters, device=dev, show_pbar=False)
    return torch.from_numpy(np.asarray(sp.to_device(app.run(), sp.cpu_device)))
