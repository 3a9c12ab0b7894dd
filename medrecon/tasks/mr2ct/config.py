"""Settings of ``medrecon translate mr2ct`` (YAML section ``translate``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import Settings

SAMPLERS = ("ddim", "ddpm", "ve_pc", "ve_em", "ve_ode")


class TranslateConfig(Settings):
    """How a synthetic CT is made from an MR (:mod:`medrecon.tasks.mr2ct.translate`).

    Attributes:
        method: ``diffusion`` (a conditional prior; a regression prior, ``objective: regression``,
            predicts in one pass) or ``bulk`` (bulk-density classes from MR thresholds,
            :mod:`medrecon.tasks.mr2ct.bulk`; no prior).
        sampler: ``ddim`` / ``ddpm`` (DDPM priors), ``ve_pc`` / ``ve_em`` / ``ve_ode`` (score
            priors and DDPM priors; :class:`~medrecon.diffusion.posterior.PosteriorSettings`);
            ``None``: the prior's recommendation, else ``ddim`` or ``ve_ode``.
        steps: network evaluations per sample (``ve_pc``: predictor steps; ``ve_ode``: noise levels).
        start: fraction of the noise schedule the chains start from. 1: from noise; < 1: from the
            prior's own one-evaluation estimate (its x̂₀ at the top of the schedule, the same for
            every sample of a slice) diffused to that level, so ``steps`` refine it.
        eta: DDIM stochasticity.
        samples: posterior samples per slice; > 1 also gives the per-voxel std.
        summary: what the synthetic CT is of the samples: their ``mean`` or their per-voxel
            ``median`` (the estimate that minimises the expected absolute HU error).
        seed: seed of the sampler.
        batch: slices sampled together (with their samples, one batch through the network).
        coupling: weight β of ``β Σ ||x_{k+1} − x_k||²`` between neighbouring slices of a batch at
            every step (0: none).
        shared_noise: every slice of sample ``j`` starts from the same noise (smooth reformats
            with deterministic samplers).
        tile: the network sees each slice in overlapping ``tile²`` windows (2-D priors trained on
            patches; :func:`~medrecon.diffusion.tiling.windowed`) or the volume in ``tile³``
            windows (3-D priors); ``None``: whole slices (3-D: 64³ windows).
            64, the shipped prior's training patch, beat whole 128² slices for both the DDPM and
            the L1 regression on the held-out slab (docs/results/mr2ct.md).
        mirror: every other sample (a regression prior: the mean of two predictions) is drawn on
            the slices mirrored left to right and mirrored back, so the network's own asymmetric
            errors partly cancel in the mean (:mod:`~medrecon.diffusion.mirror_views`; no effect
            on one sample of a diffusion prior, or on sagittal slices). Off unless the prior
            recommends it: it helps where the subjects and the training set are close to
            symmetric (the template head, ``mr2ct-head``) and harms a network that learned
            asymmetric anatomy (the NAC-PET / CT pairs; docs/results/mr2ct.md).
        contrast_tolerance: largest distance between the input MR's contrast fingerprint and the
            prior's (:func:`~medrecon.datasets.mr_volume.fingerprint_distance`) accepted without a warning.
        head_threshold / bone_threshold / bone_depth_mm / soft_tissue_hu / bone_hu: ``bulk`` only
            (:mod:`medrecon.tasks.mr2ct.bulk`): the head above ``head_threshold`` of the normalised
            MR, bone darker than ``bone_threshold`` within ``bone_depth_mm`` of the head's outline,
            and the HU given to soft tissue and bone (air: −1000).
    """

    method: Literal["diffusion", "bulk"] = "diffusion"
    sampler: Literal["ddim", "ddpm", "ve_pc", "ve_em", "ve_ode"] | None = None
    steps: int = Field(50, ge=1, le=2000)
    start: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    eta: float = Field(0.0, ge=0, allow_inf_nan=False)
    samples: int = Field(1, ge=1, le=256)
    summary: Literal["mean", "median"] = "mean"
    seed: int = 0
    batch: int = Field(32, ge=1, le=4096)
    coupling: float = Field(0.0, ge=0, le=1e4, allow_inf_nan=False)
    shared_noise: bool = True
    tile: int | None = Field(64, ge=8, le=1024)
    mirror: bool = False
    contrast_tolerance: float = Field(0.08, gt=0, allow_inf_nan=False)
    head_threshold: float = Field(0.05, gt=0, lt=1, allow_inf_nan=False)
    bone_threshold: float = Field(0.15, gt=0, lt=1, allow_inf_nan=False)
    bone_depth_mm: float = Field(16.0, gt=0, le=100, allow_inf_nan=False)
    soft_tissue_hu: float = Field(40.0, ge=-200, le=200, allow_inf_nan=False)
    bone_hu: float = Field(700.0, ge=200, le=2000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _coupling_within_batch(self) -> TranslateConfig:
        if self.coupling > 0 and self.batch < 2:
            raise ValueError(f"batch: expected >= 2 with coupling > 0 (it couples the slices of one batch), got {self.batch}")
        return self
