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

from ...physics.ct import CTGeometry, CTProjector
from .config import FILTERS


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


def rebin_fan_to_parallel(sino: torch.Tensor, geometry: CTGeometry) -> tuple[torch.Tensor, CTGeometry]:
    """Resample flat-detector fan-beam data ``(B, views, det)`` onto a 180° parallel-beam grid.

    A fan ray at source angle β and detector position u is the parallel ray with
    ``θ = β − γ``, ``t = R sin γ``, ``γ = atan(u / (R + D))`` (ASTRA's ``fanflat`` conventions,
    R = source–axis, D = axis–detector; checked by reconstructing a phantom in the tests).
    Bilinear interpolation (``grid_sample``) runs on the data's device; parallel rays outside the
    scanned arc are zero (a short scan gives the partial FBP reconstruction). The parallel detector
    has the fan detector's pitch scaled to the rotation axis and ``n_views // 2`` views over 180°.
    """
    if geometry.beam != "fan":
        raise ValueError(f"geometry: expected a 'fan' geometry, got {geometry.beam!r}")
    r, d = geometry.source_origin_mm, geometry.origin_det_mm
    nb, nd = geometry.n_views, geometry.n_det
    par = CTGeometry.create(
        "parallel",
        geometry.image_shape,
        geometry.voxel_size_mm,
        max(nb // 2, 1),
        n_det=nd,
        det_spacing_mm=geometry.det_spacing_mm * r / (r + d),
    )
    beta = torch.tensor(geometry.angles_rad, dtype=torch.float64)
    step = float(beta[1] - beta[0]) if nb > 1 else 2 * math.pi
    full = abs(step * nb - 2 * math.pi) < 1e-6
    theta = torch.tensor(par.angles_rad, dtype=torch.float64)
    t = (torch.arange(nd, dtype=torch.float64) - (nd - 1) / 2) * par.det_spacing_mm
    th, tt = torch.meshgrid(theta, t, indexing="ij")
    gamma = torch.asin(torch.clamp(tt / r, -1.0, 1.0))
    b = th + gamma  # β = θ + γ
    u = (r + d) * torch.tan(gamma)
    bi = torch.remainder(b - beta[0], 2 * math.pi) / step if full else (b - beta[0]) / step
    ui = u / geometry.det_spacing_mm + (nd - 1) / 2
    data = torch.cat((sino, sino[:, :1]), dim=1) if full else sino  # wrap-around row for a full scan
    rows = data.shape[1]
    grid = torch.stack((2 * ui / (nd - 1) - 1, 2 * bi / (rows - 1) - 1), dim=-1).to(sino.device, sino.dtype)
    out = torch.nn.functional.grid_sample(
        data[:, None], grid[None].expand(sino.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=True
    )
    return out[:, 0], par


def fbp(sino: torch.Tensor, geometry: CTGeometry, window: str = "ram-lak", op: CTProjector | None = None) -> torch.Tensor:
    """Filtered back-projection: ``(B, views, det)`` line integrals → ``(B, rows, cols)`` attenuation.

    Parallel beam directly; fan beam after :func:`rebin_fan_to_parallel` (ASTRA's CPU FBP is
    parallel-only). Views are weighted by the mean angular step, so a limited arc gives the
    (biased) partial reconstruction, as FBP does.
    """
    if geometry.beam == "fan":
        sino, geometry = rebin_fan_to_parallel(sino, geometry)
        op = None
    elif geometry.beam != "parallel":
        raise ValueError(f"fbp: expected a 'parallel' or 'fan' geometry, got {geometry.beam!r}; use sirt, cgls or tv for this beam")
    op = op or CTProjector(geometry)
    a = np.unwrap(np.asarray(geometry.angles_rad))
    dtheta = float(abs(a[-1] - a[0]) / (len(a) - 1)) if len(a) > 1 else math.pi
    pixel = float(geometry.voxel_size_mm[-1])
    # ASTRA's linear back-projector sums ray weights ~ pixel² / det_spacing per view
    scale = dtheta * geometry.det_spacing_mm / pixel**2
    return op.adjoint(filter_sinogram(sino, geometry, window)) * scale


def fdk(sino: torch.Tensor, geometry: CTGeometry, short_scan: bool = False) -> torch.Tensor:
    """FDK cone-beam reconstruction through ASTRA's ``FDK_CUDA`` (needs ASTRA with CUDA).

    Args:
        sino: ``(B, det_rows, views, det)`` line integrals.
        geometry: a ``cone`` geometry.
        short_scan: Parker weighting for arcs shorter than 360°.

    Returns:
        ``(B, slices, rows, cols)`` on the input's device. ASTRA's FDK reads and writes host
        arrays, so data go through host memory (unlike the projectors, which stay on the GPU).
    """
    if geometry.beam != "cone":
        raise ValueError(f"fdk: expected a 'cone' geometry, got {geometry.beam!r}")
    import astra

    if not astra.use_cuda():
        raise RuntimeError("fdk: ASTRA's FDK runs on CUDA only and ASTRA sees no GPU; use sirt / cgls on a GPU or fbp for 2-D beams")
    if sino.ndim != 4 or tuple(sino.shape[1:]) != geometry.sino_shape:
        raise ValueError(f"sino: expected (B, {', '.join(map(str, geometry.sino_shape))}), got {tuple(sino.shape)}")
    from ...physics.ct.projector import cuda_geometry

    unit, pitch = cuda_geometry(geometry)  # as the CUDA projectors: pixel units, the same angle convention
    vg, pg = unit.astra_vol_geom(), unit.astra_proj_geom()
    out = []
    for b in range(sino.shape[0]):
        sid = astra.data3d.create("-sino", pg, sino[b].detach().float().cpu().numpy())
        rid = astra.data3d.create("-vol", vg)
        cfg = astra.astra_dict("FDK_CUDA")
        cfg.update(ProjectionDataId=sid, ReconstructionDataId=rid, option={"ShortScan": bool(short_scan)})
        aid = astra.algorithm.create(cfg)
        try:
            astra.algorithm.run(aid)
            out.append(torch.from_numpy(astra.data3d.get(rid)))
        finally:
            astra.algorithm.delete(aid)
            astra.data3d.delete([sid, rid])
    return (torch.stack(out) / pitch).to(sino.device)  # sino in mm = pitch × sino in pixel units
