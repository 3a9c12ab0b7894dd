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

from pydantic import Field

from ...config import Settings

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
