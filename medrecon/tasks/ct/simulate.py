"""Simulate CT acquisitions (limited-angle, sparse-view, low-dose) from real CT volumes in HU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ...datasets.ct_volume import CTVolume
from ...datasets.sinogram_io import write_sinogram
from ...physics.ct import CTGeometry, CTProjector
from ...physics.ct.transmission import MU_WATER_PER_MM, hu_to_mu, log_transform, simulate_counts


@dataclass(frozen=True)
class CTScanSpec:
    """A simulated scan.

    Attributes:
        beam: ``parallel`` or ``fan`` (slice by slice).
        arc_deg: angular range (``< 180`` parallel = limited angle); ``None`` = full.
        views: number of projections (small = sparse view).
        dose: incident photons per detector bin; ``None`` = noiseless line integrals.
        electronic_sigma: Gaussian electronic noise (counts).
        source_origin_mm / origin_det_mm: fan-beam distances.
        seed: noise seed.
    """

    beam: str = "parallel"
    arc_deg: float | None = None
    views: int = 180
    dose: float | None = 1e5
    electronic_sigma: float = 0.0
    source_origin_mm: float = 595.0
    origin_det_mm: float = 490.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.beam not in ("parallel", "fan"):
            raise ValueError(f"beam: expected 'parallel' or 'fan' for slice-wise simulation, got {self.beam!r}")
        if self.views < 1:
            raise ValueError(f"views: expected >= 1, got {self.views}")
        if self.dose is not None and self.dose <= 0:
            raise ValueError(f"dose: expected > 0 photons per bin, got {self.dose}")

    def geometry(self, rows: int, cols: int, pixel_mm: float) -> CTGeometry:
        fan = self.beam == "fan"
        return CTGeometry.create(
            self.beam, (rows, cols), (pixel_mm, pixel_mm), self.views, arc_deg=self.arc_deg,
            source_origin_mm=self.source_origin_mm if fan else 0.0, origin_det_mm=self.origin_det_mm if fan else 0.0,
        )


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
        raise ValueError(f"{vol.source}: pixel spacing: expected square pixels for 2-D CT geometries, got {row} x {col} mm")
    idx = list(range(vol.hu.shape[0])) if slices is None else list(slices)
    for i in idx:
        if not 0 <= i < vol.hu.shape[0]:
            raise ValueError(f"slices: index {i} out of range 0..{vol.hu.shape[0] - 1} for {vol.source}")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise ValueError(f"slices: expected a contiguous ascending range (the output keeps one affine), got {idx}")
    geom = spec.geometry(vol.hu.shape[1], vol.hu.shape[2], col)
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
        "source": str(vol.source),
        "seed": int(spec.seed),
    }
    affine = vol.affine.copy()
    affine[:3, 3] = vol.affine[:3, 3] + vol.affine[:3, 2] * idx[0]  # first simulated slice
    return write_sinogram(out, sino, geom, affine, idx, attrs)
