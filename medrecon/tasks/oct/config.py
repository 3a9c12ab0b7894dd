"""Settings of the OCT task, each parameter with its one default here.

:class:`OCTDenoiseConfig` — speckle denoising of B-scans (``medrecon denoise oct``) with a classical
baseline. Each method's strength follows the noise level σ estimated from each B-scan
(:mod:`medrecon.tasks.oct.noise`) through one multiplier per method (the rule is
:func:`medrecon.tasks.oct.baselines.method_parameters`). The multipliers and the default method
were chosen on the shared Duke cases 01–04 only (``benchmarks/bench_oct.py --tune`` →
``benchmarks/results/oct_tuning.json``: the smallest multiplier within 0.01 dB of the best mean
PSNR against the registered average); cases 05–12 are the test set of
``benchmarks/results/oct_baselines.md``. Measured there (mean PSNR on 01–04): BM3D 27.93 dB at
3 σ (a plateau from 3 to 4 σ; only 26.82 dB at 1 σ: against the smooth registered average, BM3D
is best far above the estimated σ of this clipped, log-compressed speckle), TV 27.75 dB at 1.5 σ,
non-local means 27.70 dB at 1 σ — so BM3D is the default. On the test cases 05–12 the three are
within 0.1 dB (BM3D 26.88, TV 26.87, NLM 26.79 dB), BM3D with the best SSIM and EPI.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import Settings
from ...diffusion.posterior import PosteriorSettings

OCT_METHODS = ("bm3d", "nlm", "tv")


class OCTDenoiseConfig(Settings):
    """Classical OCT speckle denoising (YAML section ``denoise``).

    Attributes:
        method: ``bm3d`` (Mäkinen et al. 2020, the ``bm3d`` package), ``nlm`` (non-local means,
            scikit-image, fast mode) or ``tv`` (Chambolle's total variation, scikit-image).
        sigma: the noise σ in the B-scans' stored units for every B-scan; ``None`` estimates it
            from each B-scan.
        bm3d_factor: BM3D's noise σ = ``bm3d_factor`` × σ.
        nlm_factor: non-local means' filter strength h = ``nlm_factor`` × σ (σ is also passed,
            so patch distances are bias-corrected by 2σ²).
        nlm_patch_size / nlm_patch_distance: patch side and search radius in pixels.
        tv_factor: TV weight = ``tv_factor`` × σ (the image's units: the ROF problem is
            scale-equivariant).
        tv_iters: Chambolle iterations, all run (scikit-image's relative-energy stop is switched
            off: it fired after a few iterations at some weights, 26.4 instead of 27.9 dB PSNR on
            case 01 at 1.5 σ).
    """

    method: Literal["bm3d", "nlm", "tv"] = "bm3d"
    sigma: float | None = Field(None, gt=0, allow_inf_nan=False)
    bm3d_factor: float = Field(3.0, gt=0, le=20, allow_inf_nan=False)
    nlm_factor: float = Field(1.0, gt=0, le=20, allow_inf_nan=False)
    nlm_patch_size: int = Field(7, ge=1, le=31)
    nlm_patch_distance: int = Field(11, ge=1, le=50)
    tv_factor: float = Field(1.5, gt=0, le=100, allow_inf_nan=False)
    tv_iters: int = Field(300, ge=1, le=100_000)


class OCTDiffusionConfig(PosteriorSettings):
    """OCT speckle denoising with a diffusion prior trained on noisy B-scans (YAML section ``denoise``).

    The chain (:mod:`medrecon.tasks.oct.diffusion`) starts from the noisy B-scan diffused to
    ``start_level × σ̂`` and stops at ``end_level × σ̂`` (σ̂: the speckle σ estimated from each
    B-scan on the prior's scale, :mod:`medrecon.tasks.oct.noise`), with the noisy-data prior turned
    into a clean-image denoiser (:class:`~medrecon.diffusion.noisy_data.NoisyDataDenoiser`) and a
    Gaussian likelihood step on every x̂₀ (speckle is close to additive Gaussian on the prior's
    log-compressed scale): ``x = (y + λ x̂₀) / (1 + λ)``, ``λ = dc_lam`` (0: no likelihood step).
    ``start`` / ``end`` fractions are set from the levels per batch; the values here are ignored.
    Defaults: the best measured on a reference-free criterion (docs/results/oct.md) — one step at
    6 σ̂, no likelihood step, the mean of 16 samples.

    Attributes:
        start_level / end_level: the chain's first and last noise level in units of σ̂ (end > 1:
            the clean-image denoiser exists above the data's own noise only).
        batch: B-scans denoised together (with their samples, one batch through the network).
        coupling: weight β of ``β Σ ||x_{k+1} − x_k||²`` between neighbouring B-scans of a batch
            inside the likelihood step (volumes; 0: B-scans independent). Needs ``dc_lam > 0``.
        transform: the intensity transform the input needs; ``None``: the prior's. A different
            one from the prior's is refused.
        mirror: every other sample of a B-scan is denoised mirrored left-right (a left eye's
            B-scan is a mirrored right eye's), so the mean averages both orientations.
        tile: the network sees ``tile × tile`` windows overlapping by ``overlap`` (a fraction),
            blended (:class:`~medrecon.diffusion.tiling.TiledDenoiser`); 0: whole B-scans (memory
            grows with the square of the pixel count).
    """

    sampler: Literal["dds", "ddim", "ddpm", "ve_pc"] = "ddim"
    dc: Literal["cg", "grad", "hard", "none", "likelihood"] = "cg"
    dc_iters: int = Field(1, ge=1)
    dc_lam: float = Field(0.0, ge=0, allow_inf_nan=False)
    steps: int = Field(1, ge=1)
    samples: int = Field(16, ge=1)
    start_level: float = Field(6.0, gt=1, le=50, allow_inf_nan=False)
    end_level: float = Field(1.2, gt=1, le=50, allow_inf_nan=False)
    batch: int = Field(8, ge=1, le=4096)
    coupling: float = Field(0.0, ge=0, allow_inf_nan=False)
    transform: Literal["linear", "log"] | None = None
    mirror: bool = False
    tile: int = Field(128, ge=0, le=4096)
    overlap: float = Field(0.25, ge=0, lt=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _levels(self) -> OCTDiffusionConfig:
        if self.end_level > self.start_level:
            raise ValueError(f"end_level: expected at most start_level ({self.start_level}), got {self.end_level}")
        if 0 < self.tile < 8:
            raise ValueError(f"tile: expected 0 (whole B-scans) or >= 8, got {self.tile}")
        if self.dc not in ("cg", "none"):
            raise ValueError(f"dc: expected 'cg' (the Gaussian likelihood step) or 'none' for OCT, got {self.dc!r}")
        if self.coupling > 0 and (self.dc != "cg" or self.dc_lam == 0):
            raise ValueError(f"coupling: expected 0 without the likelihood step (dc 'cg' with dc_lam > 0), got {self.coupling}")
        return self
