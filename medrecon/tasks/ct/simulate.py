"""Simulate CT acquisitions (limited-angle, sparse-view, low-dose) from real CT volumes in HU."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ...datasets.ct_volume import CTVolume
from ...datasets.sinogram_io import source_relative, write_sinogram
from ...errors import ArgumentError, InputFileError
from ...memory import check_allocation
from ...physics.ct import CTProjector
from ...physics.ct.transmission import MU_WATER_PER_MM, hu_to_mu, log_transform, simulate_counts
from .config import CTScanSpec


def simulate_ct(
    vol: CTVolume,
    spec: CTScanSpec,
    out: str | Path,
    slices: Sequence[int] | None = None,
    device: str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Project the chosen slices of ``vol`` (HU → μ at ``MU_WATER_PER_MM``), add noise, write h5."""
    sl, row, col = vol.spacing_mm
    if abs(row - col) > 1e-4 * col:
        raise InputFileError(vol.source, "pixel spacing", "square pixels for 2-D CT geometries", f"{row} x {col} mm")
    idx = list(range(vol.hu.shape[0])) if slices is None else list(slices)
    for i in idx:
        if not 0 <= i < vol.hu.shape[0]:
            raise ArgumentError(f"--slices: expected indices 0..{vol.hu.shape[0] - 1} of {vol.source}, got {i} (out of range)")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise ArgumentError(f"slices: expected a contiguous ascending range (the output keeps one affine), got {idx}")
    geom = spec.geometry(vol.hu.shape[1], vol.hu.shape[2], col)
    check_allocation(((len(idx), *geom.sino_shape), np.float32), None, "views", what="a sinogram")  # slices × views × detectors
    op = CTProjector(geom)
    g = torch.Generator().manual_seed(spec.seed)
    sino = np.empty((len(idx), *geom.sino_shape), dtype=np.float32)
    for n, i in enumerate(idx):
        mu = torch.clamp(hu_to_mu(torch.from_numpy(vol.hu[i])), min=0)[None].to(device)
        p = op(mu)
        if spec.dose is not None:
            p = log_transform(simulate_counts(p, spec.dose, g, spec.electronic_sigma), spec.dose)
        sino[n] = p[0].cpu().numpy()
        if progress:
            progress(n + 1, len(idx))
    attrs = {
        "dose": float(spec.dose) if spec.dose is not None else -1.0,
        "electronic_sigma": float(spec.electronic_sigma),
        "mu_water_per_mm": MU_WATER_PER_MM,
        "source": Path(vol.source).name,
        **source_relative(vol.source, out),
        "seed": int(spec.seed),
    }
    affine = vol.affine.copy()
    affine[:3, 3] = vol.affine[:3, 3] + vol.affine[:3, 2] * idx[0]  # first simulated slice
    headers = [vol.headers[i] for i in idx] if len(vol.headers) == vol.hu.shape[0] else []
    return write_sinogram(out, sino, geom, affine, idx, attrs, source_headers=headers)
