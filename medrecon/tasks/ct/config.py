"""Settings of the CT task, each parameter with its one default here.

- :class:`CTScanSpec` — a simulated scan (``medrecon simulate ct``): limited angle, sparse view, low dose;
- :class:`CTReconConfig` — FBP / SIRT / CGLS / TV reconstruction (``medrecon reconstruct ct``).

The TV weight and the iteration counts were measured on real abdominal CT
(``benchmarks/bench_ct_real.py``, docs/results/ct.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ...config import Settings
from ...errors import ArgumentError
from ...physics.ct import CTGeometry

CT_METHODS = ("fbp", "sirt", "cgls", "tv")
FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")
DEFAULT_ITERS = {"sirt": 200, "cgls": 30, "tv": 300}


class CTScanSpec(Settings):
    """A simulated scan.

    Attributes:
        beam: ``parallel`` or ``fan`` (slice by slice).
        arc_deg: angular range (``< 180`` parallel = limited angle); ``None`` = full (180° parallel, 360° fan).
        views: number of projections (small = sparse view).
        dose: incident photons per detector bin; ``None`` = noiseless line integrals.
        electronic_sigma: Gaussian electronic noise (counts).
        source_origin_mm / origin_det_mm: fan-beam distances.
        seed: noise seed.
    """

    beam: Literal["parallel", "fan"] = "parallel"
    arc_deg: float | None = Field(None, gt=0, le=360)
    views: int = Field(180, ge=1, le=100_000)
    dose: float | None = Field(1e5, gt=0, allow_inf_nan=False)
    electronic_sigma: float = Field(0.0, ge=0, allow_inf_nan=False)
    source_origin_mm: float = Field(595.0, gt=0)
    origin_det_mm: float = Field(490.0, ge=0)
    seed: int = 0

    def geometry(self, rows: int, cols: int, pixel_mm: float) -> CTGeometry:
        """The 2-D geometry of this scan for ``rows × cols`` images of square ``pixel_mm`` pixels."""
        fan = self.beam == "fan"
        try:
            return CTGeometry.create(
                self.beam,
                (rows, cols),
                (pixel_mm, pixel_mm),
                self.views,
                arc_deg=self.arc_deg,
                source_origin_mm=self.source_origin_mm if fan else 0.0,
                origin_det_mm=self.origin_det_mm if fan else 0.0,
            )
        except ValueError as err:
            raise ArgumentError(f"scan: {err}") from None


class CTReconConfig(Settings):
    """Settings of a CT reconstruction (YAML section ``recon``).

    Attributes:
        method: ``fbp``, ``sirt``, ``cgls`` or ``tv`` (TV-regularised least squares by PDHG).
        filter: FBP filter (``ram-lak``, ``shepp-logan``, ``cosine``, ``hamming``, ``hann``).
        iters: iterations of the iterative methods; ``None``: :data:`DEFAULT_ITERS`.
        lam: TV weight in 1/mm (attenuation units); 0.3 was best for 90° and 60-view scans of
            real 512² abdominal CT at 1e5 photons, 1.0 for 120°.
        batch: slices reconstructed together.
    """

    method: Literal["fbp", "sirt", "cgls", "tv"] = "fbp"
    filter: Literal["ram-lak", "shepp-logan", "cosine", "hamming", "hann"] = "ram-lak"
    iters: int | None = Field(None, ge=1)
    lam: float = Field(0.3, ge=0)
    batch: int = Field(8, ge=1)

    @property
    def iterations(self) -> int:
        """The iterations used (``iters`` or the method's default; 0 for FBP)."""
        return DEFAULT_ITERS.get(self.method, 0) if self.iters is None else self.iters
