"""Coil combination and coil-sensitivity estimation (ESPIRiT).

ESPIRiT (Uecker et al., MRM 71:990, 2014) runs in two backends:

- ``backend="sigpy"``: ``sigpy.mri.app.EspiritCalib`` (CuPy on GPU when present). SigPy only
  accepts a *square* calibration region of side ``calib_width``.
- ``backend="torch"`` (default): the same algorithm written here in torch, because SigPy cannot
  take a *rectangular* calibration region. With 1-D Cartesian undersampling the fully sampled
  centre is narrow along the phase-encode axis but spans the whole readout (8× with a 4 % centre
  is 10 of 256 lines): a square region either covers unsampled zeros (wrong kernels) or is 10×10
  (too few rows for the calibration matrix), and SigPy's maps then cover only a small part of the
  object. The torch backend calibrates on ``acs_lines × readout`` and runs on CUDA tensors as well.
"""

from __future__ import annotations

import numpy as np
import torch

from ..fft import ifftc


def rss(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares over the coil axis ``dim``: ``sqrt(Σ_c |x_c|²)`` (real output)."""
    return torch.sqrt(torch.sum(torch.abs(x) ** 2, dim=dim))


def coil_combine(coil_images: torch.Tensor, maps: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """SENSE-optimal combination ``Σ_c conj(S_c) x_c`` of coil images with sensitivities ``maps``.

    Args:
        coil_images: complex ``(B, C, H, W)`` (or any layout with coils on ``dim``).
        maps: complex, broadcastable to ``coil_images``.

    Returns:
        Complex image with the coil axis removed.
    """
    return torch.sum(torch.conj(maps) * coil_images, dim=dim)


def acs_region(kspace: torch.Tensor) -> tuple[int, int]:
    """Size ``(rows, cols)`` of the fully sampled centre rectangle of 2-D k-space ``(C, H, W)``.

    A k-space location counts as sampled when any coil is non-zero there. The region grows from
    the centre ``(H // 2, W // 2)`` along each axis while the whole line through the centre
    strip is sampled.
    """
    sampled = torch.any(kspace != 0, dim=0)
    h, w = sampled.shape
    cy, cx = h // 2, w // 2
    if not bool(sampled[cy, cx]):
        raise ValueError("kspace: the k-space centre is not sampled; no auto-calibration region to estimate coil maps from")

    def extent(line: torch.Tensor, c: int) -> int:
        lo = c
        while lo - 1 >= 0 and bool(line[lo - 1]):
            lo -= 1
        hi = c
        while hi + 1 < line.numel() and bool(line[hi + 1]):
            hi += 1
        return hi - lo + 1

    cols = extent(sampled[cy, :], cx)
    rows = extent(sampled[:, cx], cy)
    # shrink so that the whole rectangle (not just the centre cross) is sampled
    while rows > 1 and cols > 1:
        y0, x0 = cy - rows // 2, cx - cols // 2
        if bool(sampled[y0 : y0 + rows, x0 : x0 + cols].all()):
            break
        rows, cols = max(1, rows - 2), max(1, cols - 2)
    return rows, cols


def _centre_crop(k: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    h, w = k.shape[-2:]
    y0, x0 = h // 2 - rows // 2, w // 2 - cols // 2
    return k[..., y0 : y0 + rows, x0 : x0 + cols]


def espirit_maps(
    kspace: torch.Tensor | np.ndarray,
    calib_shape: tuple[int, int] | None = None,
    kernel_width: int | None = None,
    thresh: float = 0.02,
    crop: float = 0.95,
    max_calib: int = 128,
    backend: str = "torch",
) -> torch.Tensor:
    """ESPIRiT coil sensitivities (first eigen-map) from the auto-calibration region.

    Args:
        kspace: ``(C, H, W)`` complex k-space of one slice (undersampled is fine; only the fully
            sampled centre is used), centred.
        calib_shape: ``(rows, cols)`` of the calibration rectangle. ``None`` detects the fully
            sampled centre (:func:`acs_region`) and caps each side at ``max_calib``.
        kernel_width: ESPIRiT kernel size per axis. ``None`` picks ``min(6, max(3, 2·n // 5))`` for
            a calibration region whose shorter side is ``n``: a 6×6 kernel needs more than ~15
            centre lines; with fewer it shrinks the maps' support and costs CG-SENSE accuracy. The
            CG-SENSE rows of docs/results/mri_classical.md ("Real 8-coil head, retrospective
            equispaced masks") use this default (kernel 4 at 8×, 10 centre lines).
        thresh: keep singular vectors with ``σ > thresh · σ_max`` (the signal subspace).
        crop: zero the maps where the top eigenvalue is ``<= crop`` (outside the object).
        max_calib: cap on each side of an auto-detected calibration region.
        backend: ``"torch"`` (rectangular regions, CPU or CUDA) or ``"sigpy"`` (square
            ``calib_shape`` only; uses ``max(calib_shape)``... only when both sides are equal).

    Returns:
        ``(C, H, W)`` complex tensor on the input's device, dtype complex64 (complex128 if the input
        is). Phase is referenced to coil 0, so maps are smooth and the combined image keeps the
        object's own phase.

    Raises:
        ValueError: when the calibration region is smaller than the kernel, or ``backend`` unknown.
    """
    k = torch.as_tensor(kspace)
    if not k.is_complex():
        raise TypeError(f"kspace: expected complex k-space, got {k.dtype}")
    if k.ndim != 3:
        raise ValueError(f"kspace: expected (coils, H, W), got shape {tuple(k.shape)}")
    if k.shape[0] < 1:
        raise ValueError("kspace: zero coils")
    if calib_shape is None:
        rows, cols = acs_region(k)
        rows, cols = min(rows, max_calib), min(cols, max_calib)
    else:
        rows, cols = int(calib_shape[0]), int(calib_shape[1])
    if kernel_width is None:
        kernel_width = min(6, max(3, (2 * min(rows, cols)) // 5))
    if rows < kernel_width or cols < kernel_width:
        raise ValueError(
            f"calibration region {rows}x{cols} is smaller than the ESPIRiT kernel {kernel_width}x{kernel_width}; "
            "sample more centre lines or reduce kernel_width"
        )
    if backend == "sigpy":
        return _espirit_sigpy(k, rows, cols, kernel_width, thresh, crop)
    if backend != "torch":
        raise ValueError(f"backend: expected 'torch' or 'sigpy', got {backend!r}")
    return _espirit_torch(k, rows, cols, kernel_width, thresh, crop)


def _espirit_sigpy(k: torch.Tensor, rows: int, cols: int, kw: int, thresh: float, crop: float) -> torch.Tensor:
    import sigpy as sp
    import sigpy.mri

    if rows != cols:
        raise ValueError(f"backend 'sigpy' needs a square calibration region, got {rows}x{cols}; use backend='torch'")
    dev = sp.Device(k.device.index if k.is_cuda else -1)
    with dev:
        arr = sp.to_device(k.detach().cpu().numpy(), dev) if k.is_cuda else k.detach().numpy()
        maps = sigpy.mri.app.EspiritCalib(
            arr, calib_width=rows, kernel_width=kw, thresh=thresh, crop=crop, device=dev, show_pbar=False
        ).run()
        maps = sp.to_device(maps, sp.cpu_device)
    dtype = torch.complex128 if k.dtype == torch.complex128 else torch.complex64
    return _reference_phase(torch.from_numpy(np.ascontiguousarray(maps)).to(device=k.device, dtype=dtype))


def _batched_eigh(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh`` of ``(P, C, C)`` Hermitian matrices, one per pixel.

    On CUDA, cuSOLVER's batched eigensolver has failed with CUSOLVER_STATUS_INTERNAL_ERROR on a
    256² slice's 8×8 matrices (torch 2.11 + CUDA 13); where it raises, the small matrices are solved
    on the CPU and moved back.
    """
    if gram.device.type != "cuda":
        return torch.linalg.eigh(gram)
    try:
        return torch.linalg.eigh(gram)
    except RuntimeError as err:
        if "cusolver" not in str(err).lower():
            raise
        vals, vecs = torch.linalg.eigh(gram.cpu())
        return vals.to(gram.device), vecs.to(gram.device)


def _espirit_torch(k: torch.Tensor, rows: int, cols: int, kw: int, thresh: float, crop: float) -> torch.Tensor:
    dtype = torch.complex128 if k.dtype == torch.complex128 else torch.complex64
    k = k.to(dtype)
    c, h, w = k.shape
    calib = _centre_crop(k, rows, cols)  # (C, rows, cols)
    # calibration (Hankel-block) matrix: one row per kw×kw window, columns (coil, ky, kx)
    win = calib.unfold(1, kw, 1).unfold(2, kw, 1)  # (C, nr, nc, kw, kw)
    a = win.permute(1, 2, 0, 3, 4).reshape(-1, c * kw * kw)
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    kernels = vh[s > thresh * s.max()].reshape(-1, c, kw, kw)  # signal-subspace k-space kernels
    # Each kernel as an image-domain multiplication: zero-pad to (H, W) around the centre, then
    # iFFT. The per-pixel Gram matrix Σ_n K_n(r)ᴴ K_n(r) has eigenvalue ≈ 1 where coils see signal.
    scale = (h * w) / (kw * kw)
    gram = torch.zeros(h * w, c, c, dtype=dtype, device=k.device)
    y0, x0 = h // 2 - kw // 2, w // 2 - kw // 2
    for chunk in torch.split(kernels, 16):
        padded = torch.zeros(chunk.shape[0], c, h, w, dtype=dtype, device=k.device)
        padded[..., y0 : y0 + kw, x0 : x0 + kw] = chunk
        img = ifftc(padded).reshape(chunk.shape[0], c, h * w)  # (n, C, HW)
        img = img.permute(2, 0, 1)  # (HW, n, C)
        gram += torch.conj(img).transpose(1, 2) @ img
    gram *= scale
    evals, evecs = _batched_eigh(gram)  # ascending
    top_val = evals[:, -1].real
    maps = torch.conj(evecs[:, :, -1])  # eigenvector of the conjugated Gram = sensitivity
    maps = maps * (top_val > crop).unsqueeze(1)
    maps = maps.transpose(0, 1).reshape(c, h, w)
    return _reference_phase(maps)


def _reference_phase(maps: torch.Tensor) -> torch.Tensor:
    """Remove the per-pixel phase ambiguity by referencing all coils to coil 0's phase."""
    ref = maps[0]
    mag = torch.abs(ref)
    rot = torch.where(mag > 0, torch.conj(ref) / torch.where(mag > 0, mag, torch.ones_like(mag)), torch.ones_like(ref))
    return maps * rot
