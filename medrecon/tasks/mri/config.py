"""Settings of the MRI task, each parameter with its one default here.

- :class:`MaskSpec` — retrospective undersampling (``medrecon simulate mri``);
- :class:`ClassicalConfig` — zero filling, CG-SENSE, L1-wavelet CS (``reconstruct mri --method zf|sense|cs``);
- :class:`DiffusionConfig` — posterior sampling with a prior (``reconstruct mri --method diffusion``):
  the modality-free :class:`~medrecon.diffusion.posterior.PosteriorSettings` plus the MRI start
  estimate and phase handling.

The regularisation weights were tuned on a different image than the benchmark's
(``benchmarks/bench_mri_real.py``, docs/results/mri_classical.md); the diffusion defaults are the
setting that beats CS at 8× with both priors measured (docs/results/mri_diffusion.md), and a
prior's ``prior.json`` may recommend its own per acceleration (:func:`recommended_settings`).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from ...config import Settings
from ...diffusion.posterior import PosteriorSettings
from ...errors import ArgumentError
from ...physics.mri.masks import MASK_KINDS_1D, gaussian2d_mask, line_mask, poisson_mask

METHODS = ("zf", "sense", "cs")
DEFAULT_LAM = {"sense": 1e-4, "cs": 3e-4}  # relative to the data scale (classical.py)
DEFAULT_ITERS = {"sense": 30, "cs": 100}

MaskKind = Literal["random", "equispaced_fraction", "equispaced", "poisson", "gaussian2d"]


class MaskSpec(Settings):
    """How to undersample.

    Attributes:
        kind: ``random``, ``equispaced_fraction``, ``equispaced`` (1-D, fastMRI-identical) or
            ``poisson``, ``gaussian2d`` (2-D).
        acceleration: nominal acceleration (> 1).
        center_fraction: fully sampled centre fraction (1-D masks).
        calib: side of the fully sampled centre square (2-D masks).
        seed: RNG seed; the same mask is used for every slice of a volume (as fastMRI does).
    """

    kind: MaskKind = "equispaced_fraction"
    acceleration: float = Field(4.0, gt=1)
    center_fraction: float = Field(0.08, gt=0, lt=1)
    calib: int = Field(24, ge=1)
    seed: int = 0

    def make(self, h: int, w: int) -> tuple[np.ndarray, int]:
        """The mask ``(W,)`` (1-D) or ``(H, W)`` (2-D) float32 and its number of centre lines / calib side.

        Raises:
            ArgumentError: settings no mask of this size can meet (e.g. a centre larger than the sampling rate).
        """
        try:
            return self._make(h, w)
        except ValueError as err:
            raise ArgumentError(f"mask: {err}") from None

    def _make(self, h: int, w: int) -> tuple[np.ndarray, int]:
        if self.kind in MASK_KINDS_1D:
            acc = int(self.acceleration) if float(self.acceleration).is_integer() else self.acceleration
            lm = line_mask(self.kind, w, self.center_fraction, acc, self.seed)
            return lm.mask, lm.num_low_frequencies
        if self.kind == "poisson":
            return poisson_mask((h, w), self.acceleration, self.calib, self.seed), self.calib
        return gaussian2d_mask((h, w), self.acceleration, self.calib, self.seed), self.calib


class ClassicalConfig(Settings):
    """Settings of a classical reconstruction (YAML section ``recon``).

    Attributes:
        method: ``zf`` (RSS of zero-filled coil images), ``sense`` (CG-SENSE, Tikhonov) or ``cs``
            (L1-wavelet through SigPy).
        lam: regularisation weight relative to the data scale; ``None``: the method's tuned
            weight (:data:`DEFAULT_LAM`).
        iters: solver iterations; ``None``: :data:`DEFAULT_ITERS`.
        crop_to_recon_size: crop to the file's reference size (fastMRI's 320×320) when it has one.
    """

    method: Literal["zf", "sense", "cs"] = "cs"
    lam: float | None = Field(None, ge=0)
    iters: int | None = Field(None, ge=1)
    crop_to_recon_size: bool = True

    @property
    def weight(self) -> float:
        """The regularisation weight used (``lam`` or the method's default)."""
        return DEFAULT_LAM.get(self.method, 0.0) if self.lam is None else self.lam

    @property
    def iterations(self) -> int:
        """The iterations used (``iters`` or the method's default)."""
        return DEFAULT_ITERS.get(self.method, 0) if self.iters is None else self.iters


class DiffusionConfig(PosteriorSettings):
    """Settings of a diffusion MRI reconstruction (YAML section ``diffusion``).

    The posterior part (sampler, steps, eta, dc, dc_iters, dc_lam, samples, seed, start) is
    described in :class:`~medrecon.diffusion.posterior.PosteriorSettings`; the defaults here are a
    warm start from CS at 0.1 of the schedule, 20 steps, mean of 4 samples.

    Attributes:
        init: the warm start's estimate: ``sense`` (the CG-SENSE image below) or ``cs``
            (L1-wavelet CS, weight ``cs_lam``; SigPy, on the CPU without CuPy).
        cs_lam, cs_iters: the CS weight and iterations for ``init = cs``.
        sense_lam, sense_iters: the CG-SENSE image that sets the data scale (its 99th percentile
            of magnitude becomes 1, the priors' training normalisation) and the smooth phase.
        phase: ``demodulate`` samples the image with its smooth phase removed (moved into the
            coil maps; the result is rotated back), what a prior trained on nearly real images
            needs; ``keep`` the image as the maps give it; ``auto`` demodulates when the prior's
            ``phase_coherence`` (prior.json) is above 0.5.
        phase_sigma: Gaussian blur (pixels) of the smooth-phase estimate.
        batch_slices: slices sampled together in one batch (raise on a GPU).
    """

    steps: int = Field(20, ge=1)
    samples: int = Field(4, ge=1)
    start: float = Field(0.1, gt=0, le=1)
    init: Literal["sense", "cs"] = "cs"
    cs_lam: float = Field(DEFAULT_LAM["cs"], ge=0)
    cs_iters: int = Field(DEFAULT_ITERS["cs"], ge=1)
    sense_lam: float = Field(1e-3, ge=0)
    sense_iters: int = Field(10, ge=1)
    phase: Literal["auto", "demodulate", "keep"] = "auto"
    phase_sigma: float = Field(16.0, gt=0)
    batch_slices: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _no_likelihood(self) -> DiffusionConfig:
        if self.dc == "likelihood":
            raise ValueError("dc: expected 'cg', 'grad', 'hard' or 'none' (MRI k-space noise is Gaussian), got 'likelihood'")
        return self


def recommended_settings(info: dict, acceleration: float | None) -> dict:
    """A prior's recommended MRI settings for the acceleration nearest (in log scale) to ``acceleration``.

    ``prior.json`` may hold ``"recommended": {"mri": {"acceleration": {"4": {...}, "8": {...}}}}``;
    without it, or without a known acceleration, the result is ``{}`` (the class defaults apply).
    """
    table = info.get("recommended", {}).get("mri", {}).get("acceleration", {})
    if not table or acceleration is None or not acceleration > 0:
        return {}
    key = min(table, key=lambda k: abs(math.log(float(k)) - math.log(acceleration)))
    return dict(table[key])
