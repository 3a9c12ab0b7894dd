"""Filtered back-projection for parallel-beam CT, on the same ASTRA operator as everything else.

The ramp filter is applied in torch (so it runs where the data are, CPU or CUDA), then the
sinogram is back-projected with :class:`~medrecon.physics.ct.CTProjector`'s adjoint. Written here
rather than calling ASTRA's ``FBP`` because ASTRA's CPU FBP works on host arrays only and the
CUDA path must stay on the GPU; the test-suite checks agreement with ASTRA's CPU ``FBP``.

For ``p(θ, t) = ∫ f`` along rays, ``f(x) = ∫₀^π (p(θ, ·) * h)(x·θ) dθ`` with the ramp ``h``. The
discrete ramp is the band-limited spatial kernel (Kak & Slaney, eq. 61 of ch. 3), zero-padded to
twice the detector length, optionally apodised by a window.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..physics.ct import CTGeometry, CTProjector

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


def ramp_filter(n_det: int, det_spacing_mm: float, window: str = "ram-lak", device=None) -> torch.Tensor:
    """Frequency response ``(n_pad,)`` of the apodised band-limited ramp for a detector of ``n_det``."""
    if window not in FILTERS:
        raise ValueError(f"filter: expected one of {FILTERS}, got {window!r}")
    n_pad = int(2 ** math.ceil(math.log2(2 * n_det)))
    k = np.arange(-(n_pad // 2), n_pad // 2)
    h = np.zeros(n_pad)
    h[k == 0] = 1.0 / (4 * det_spacing_mm**2)
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd] * det_spacing_mm) ** 2
    resp = np.abs(np.fft.fft(np.fft.ifftshift(h))) * det_spacing_mm  # real, even
    f = np.fft.fftfreq(n_pad)  # cycles / sample, in [-0.5, 0.5)
    if window == "shepp-logan":
        resp *= np.sinc(f)
    elif window == "cosine":
        resp *= np.cos(np.pi * f)
    elif window == "hamming":
        resp *= 0.54 + 0.46 * np.cos(2 * np.pi * f)
    elif window == "hann":
        resp *= 0.5 + 0.5 * np.cos(2 * np.pi * f)
    return torch.from_numpy(resp.astype(np.float32)).to(device)


def filter_sinogram(sino: torch.Tensor, geometry: CTGeometry, window: str = "ram-lak") -> torch.Tensor:
    """Ramp-filter ``(B, views, det)`` along the detector axis (zero-padded, then cropped)."""
    n = sino.shape[-1]
    resp = ramp_filter(n, geometry.det_spacing_mm, window, sino.device)
    spec = torch.fft.fft(sino, n=resp.numel(), dim=-1) * resp
    return torch.fft.ifft(spec, dim=-1).real[..., :n]


def fbp(sino: torch.Tensor, geometry: CTGeometry, window: str = "ram-lak", op: CTProjector | None = None) -> torch.Tensor:
    """Parallel-beam FBP: ``(B, views, det)`` line integrals → ``(B, rows, cols)`` attenuation.

    Views are weighted by the mean angular step, so a limited arc gives the (biased) partial
    reconstruction, as FBP does. Fan / cone beams are not supported here (ASTRA's CPU FBP is
    parallel-only; a weighted fan-beam FBP is not written yet): use SIRT / CGLS / TV.
    """
    if geometry.beam != "parallel":
        raise ValueError(f"fbp: expected a 'parallel' geometry, got {geometry.beam!r}; use sirt, cgls or tv for this beam")
    op = op or CTProjector(geometry)
    a = np.unwrap(np.asarray(geometry.angles_rad))
    dtheta = float(abs(a[-1] - a[0]) / (len(a) - 1)) if len(a) > 1 else math.pi
    pixel = float(geometry.voxel_size_mm[-1])
    # ASTRA's linear back-projector sums ray weights ~ pixel² / det_spacing per view
    scale = dtheta * geometry.det_spacing_mm / pixel**2
    return op.adjoint(filter_sinogram(sino, geometry, window)) * scale
