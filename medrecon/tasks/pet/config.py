"""Settings of the PET task, each parameter with its one default here.

- :class:`PETScanSpec` — a simulated emission scan (``medrecon simulate pet``);
- :class:`PETReconConfig` — OSEM / MAP-EM reconstruction (``medrecon reconstruct pet``);
- :class:`PETDiffusionConfig` — reconstruction with a diffusion prior (``--method diffusion``).

Count levels: the full-count level is :data:`FULL_COUNTS` prompts per 2-D slice, and the low-dose
levels of the literature are the fractions :data:`DOSE_FRACTIONS` of it (docs/results/pet.md says
why). The post-filter FWHM and the RDP weight per count level are measured on training slices
(``benchmarks/bench_pet.py``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from ...config import Settings
from ...diffusion.posterior import PosteriorSettings
from ...physics.ct import CTGeometry

# a clinical brain FDG scan (185-370 MBq, 10-20 min) records a few hundred million prompts over
# ~90 planes: a few million per direct-plane 2-D sinogram
FULL_COUNTS = 5e6
DOSE_FRACTIONS = (1 / 4, 1 / 10, 1 / 20, 1 / 50)
PET_METHODS = ("osem", "mapem", "diffusion")
DEFAULT_ITERS = {"osem": 4, "mapem": 20}  # passes over the data at 8 subsets (docs/results/pet.md)
# best OSEM post-filter FWHM (mm) and MAP-EM β per prompts per slice, min NRMSE on 4 training slices
# (benchmarks/bench_pet.py → benchmarks/results/pet_tuning.json; 2 mm pixels, 180 views, 30 % background)
TUNED_BY_COUNTS = {5e6: (4.0, 0.01), 1.25e6: (4.0, 0.03), 5e5: (6.0, 0.03), 2.5e5: (8.0, 0.03), 1e5: (10.0, 0.1)}


def recommended_classical(prompts_per_slice: float) -> dict:
    """``fwhm_mm`` and ``beta`` measured best at the count level nearest (in log) to the data's."""
    level = min(TUNED_BY_COUNTS, key=lambda c: abs(math.log(c) - math.log(max(prompts_per_slice, 1.0))))
    fwhm, beta = TUNED_BY_COUNTS[level]
    return {"fwhm_mm": fwhm, "beta": beta}


class PETScanSpec(Settings):
    """A simulated 2-D emission scan.

    Attributes:
        counts: expected prompts (trues + background) per slice.
        background_fraction: randoms + scatter as a fraction of the prompts (uniform over the bins).
        views: sinogram views over 180°.
        efficiency_sd: relative spread of the per-bin detector efficiencies (log-normal; 0 = uniform).
        attenuation: multiply by the attenuation factors of the CT's μ-map at 511 keV.
        seed: noise seed.
    """

    counts: float = Field(FULL_COUNTS, gt=0, allow_inf_nan=False)
    background_fraction: float = Field(0.3, ge=0, lt=1, allow_inf_nan=False)
    views: int = Field(180, ge=1, le=100_000)
    efficiency_sd: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)
    attenuation: bool = True
    seed: int = 0

    def geometry(self, rows: int, cols: int, pixel_mm: float) -> CTGeometry:
        """The 2-D parallel sinogram geometry for ``rows × cols`` images of ``pixel_mm`` pixels."""
        return CTGeometry.create("parallel", (rows, cols), (pixel_mm, pixel_mm), self.views)


class PETReconConfig(Settings):
    """OSEM / MAP-EM.

    Attributes:
        method: ``osem`` (with a Gaussian post-filter) or ``mapem`` (RDP, one-step-late).
        iterations / subsets: passes over the data (None: :data:`DEFAULT_ITERS` of the method) and
            view subsets per pass.
        fwhm_mm: OSEM's post-filter (0 = none); the command's default is :func:`recommended_classical`
            for the sinogram's counts.
        beta: MAP-EM's RDP weight, relative to the mean sensitivity (see
            :func:`~medrecon.tasks.pet.em.map_em_rdp`); default as ``fwhm_mm``.
        gamma: RDP's edge-preservation parameter.
    """

    method: Literal["osem", "mapem"] = "osem"
    iterations: int | None = Field(None, ge=1, le=10_000)
    subsets: int = Field(8, ge=1, le=1000)
    fwhm_mm: float = Field(4.0, ge=0, le=100, allow_inf_nan=False)
    beta: float = Field(0.03, ge=0, allow_inf_nan=False)
    gamma: float = Field(2.0, ge=0, allow_inf_nan=False)


class PETDiffusionConfig(PosteriorSettings):
    """Settings of a PET reconstruction with a diffusion prior (YAML section ``diffusion``).

    The posterior part is :class:`~medrecon.diffusion.posterior.PosteriorSettings`; here DDIM with
    the Poisson likelihood step (:class:`~medrecon.diffusion.consistency.PoissonProximalEM`) on
    every x̂₀. The defaults — the MAP-EM image diffused to 0.03 of the schedule (its noise level),
    20 steps, ρ 0.3, the mean of 4 samples — are the best measured at 1/10 dose on the tuning
    slices (docs/results/pet.md). PET-specific:

    Attributes:
        dc_lam: ``ρ``, the proximal weight relative to the likelihood's curvature at the mean
            activity (0: plain EM steps from x̂₀).
        dc_iters: EM steps per data-consistency call.
        guide: what a guided prior is given: ``ct`` (the co-registered CT stored with the
            sinogram) or ``none`` (a zero guide: the unguided variant of a prior trained with
            condition dropout).
        init: the warm start: ``mapem`` (BSREM with RDP, β as :func:`recommended_classical`
            for the scan's counts, :data:`DEFAULT_ITERS` passes) or ``osem``.
        init_iters / init_fwhm_mm: the OSEM warm start (passes at 8 subsets, post-filter).
    """

    sampler: Literal["dds", "ddim", "ddpm", "ve_pc"] = "ddim"
    dc: Literal["cg", "grad", "hard", "none", "likelihood"] = "likelihood"
    steps: int = Field(20, ge=1)
    samples: int = Field(4, ge=1)
    start: float = Field(0.03, gt=0, le=1)
    dc_lam: float = Field(0.3, ge=0, allow_inf_nan=False)
    dc_iters: int = Field(2, ge=1)
    guide: Literal["ct", "none"] = "ct"
    init: Literal["osem", "mapem"] = "mapem"
    init_iters: int = Field(4, ge=1)
    init_fwhm_mm: float = Field(4.0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _likelihood_only(self) -> PETDiffusionConfig:
        if self.dc not in ("likelihood", "none"):
            raise ValueError(f"dc: expected 'likelihood' (the Poisson likelihood step) or 'none' for PET, got {self.dc!r}")
        return self


class PETDenoiseConfig(PosteriorSettings):
    """Settings of image-domain PET denoising with a diffusion prior (YAML section ``denoise``).

    PET-DDPM's setting (Gong et al. 2023), for users without sinograms: the low-count image is the
    warm start (diffused to ``start``) and the measurement, with a Gaussian proximal step on every
    x̂₀, ``x = (y + λ x̂₀) / (1 + λ)`` (``dc_lam`` = λ: the prior's weight against the noisy image;
    proximal CG on the identity operator solves it in one iteration). The defaults (start 0.05, λ 30,
    the mean of 4 samples) are the best measured on unfiltered OSEM images at 1/10 dose on the
    tuning slices (docs/results/pet.md).

    Attributes:
        guide: ``ct`` (the CT given with ``--guide``) or ``none`` (the unguided variant).
    """

    sampler: Literal["dds", "ddim", "ddpm", "ve_pc"] = "ddim"
    dc: Literal["cg", "grad", "hard", "none", "likelihood"] = "cg"
    dc_iters: int = Field(1, ge=1)
    dc_lam: float = Field(30.0, ge=0, allow_inf_nan=False)
    steps: int = Field(20, ge=1)
    samples: int = Field(4, ge=1)
    start: float = Field(0.05, gt=0, lt=1)
    guide: Literal["ct", "none"] = "ct"

    @model_validator(mode="after")
    def _proximal(self) -> PETDenoiseConfig:
        if self.dc not in ("cg", "none"):
            raise ValueError(f"dc: expected 'cg' (the proximal step) or 'none' for image-domain denoising, got {self.dc!r}")
        return self
