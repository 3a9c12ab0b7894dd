"""Settings of the CT task, each parameter with its one default here.

- :class:`CTScanSpec` — a simulated scan (``medrecon simulate ct``): limited angle, sparse view, low dose;
- :class:`CTReconConfig` — FBP / SIRT / CGLS / TV reconstruction (``medrecon reconstruct ct``);
- :class:`CTDiffusionConfig` — reconstruction with a diffusion prior (``--method diffusion``).

The TV weight and the iteration counts were measured on real abdominal CT
(``benchmarks/bench_ct_real.py``, docs/results/ct.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ...config import Settings
from ...diffusion.posterior import PosteriorSettings
from ...errors import ArgumentError
from ...physics.ct import CTGeometry

CT_METHODS = ("fbp", "sirt", "cgls", "tv", "diffusion")
FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")
DEFAULT_ITERS = {"sirt": 200, "cgls": 30, "tv": 500}  # the counts of the CT table (docs/results/ct.md)


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


class CTDiffusionConfig(PosteriorSettings):
    """Settings of a CT reconstruction with a diffusion prior (YAML section ``diffusion``).

    The posterior part (sampler, steps, eta, dc, dc_iters, samples, seed, start) is described in
    :class:`~medrecon.diffusion.posterior.PosteriorSettings`. The defaults (DDS, 20 steps from the
    TV image (λ 0.3) diffused to 0.5 of the schedule, the mean of 4 samples, λ 0) are the best of
    the settings measured on a held-out slice at 90° with the shipped prior on 160² windows
    (docs/results/ct_diffusion.md: TV → 0.5 beat SIRT → 0.4 by 0.65 dB over the whole image; 4
    samples beat one by 0.4 dB at 4× the time: ``samples=1`` for speed). A prior's ``prior.json``
    may recommend settings per arc (:func:`recommended_settings`; the shipped CT prior: a TV warm
    start at every arc, from 0.2 of the schedule at 120° and 180°). CT-specific:

    Attributes:
        dc_lam: the proximal weight as a fraction of ``||W^½A||²`` (the largest eigenvalue of the
            weighted normal operator, by power iteration): the rule that makes one value serve
            every view count, arc, pixel size and dose (``0``: DDS's plain Krylov step).
        weighting: ``poisson`` weighs each ray by its expected counts, ``exp(−p)`` normalised to
            mean 1 (the inverse variance of the log-transformed data: penalised weighted least
            squares); ``none``: unweighted least squares.
        condition: what a conditional prior is given: ``fbp`` (the FBP image of the scan, as in
            training, DOLCE) or ``none`` (a zero condition: the unconditional variant of a prior
            trained with condition dropout); unconditional priors take none either way.
        init: the warm start's estimate (``start < 1``): ``fbp``, ``sirt`` or ``tv``.
        init_iters: iterations of a SIRT / TV warm start (``None``: :data:`DEFAULT_ITERS`).
        tv_lam: TV weight of a TV warm start (1/mm, as ``CTReconConfig.lam``).
        z_coupling: weight, as a fraction of ``||W^½A||²``, of a quadratic penalty on differences
            between neighbouring slices inside the CG step, for slices sampled together
            (``batch_slices``, contiguous slices of one volume): reformats keep no slice-to-slice
            flicker. 0.01 was best of 0 / 0.003 / 0.01 / 0.03 on a 20-slice 3 mm series at 90°
            (flicker 65.9 → 21.7 HU, +0.6 dB; docs/results/ct_diffusion.md); 0: independent slices.
        batch_slices: slices sampled together in one batch (and coupled along z; each batch's
            first slice is coupled to the last of the batch before, held fixed).
        tile: the network sees each slice in overlapping ``tile × tile`` windows (a quarter
            overlap, Gaussian blending; :func:`~medrecon.diffusion.tiling.windowed`), nearer the
            context of a prior trained on patches (priors trained on whole slices always see
            whole slices); 0: whole slices. 160 tied 192 and beat 0 /
            96 / 128 / 256 at 90° on held-out slice 8 with the shipped prior (96² patches), and
            gained over the whole image at every arc on slices 9-10 (docs/results/ct_diffusion.md).
    """

    steps: int = Field(20, ge=1)
    samples: int = Field(4, ge=1)
    start: float = Field(0.5, gt=0, le=1)
    dc_lam: float = Field(0.0, ge=0)
    weighting: Literal["poisson", "none"] = "poisson"
    condition: Literal["fbp", "none"] = "fbp"
    init: Literal["fbp", "sirt", "tv"] = "tv"
    init_iters: int | None = Field(None, ge=1)
    tv_lam: float = Field(0.3, ge=0)
    z_coupling: float = Field(0.01, ge=0)
    batch_slices: int = Field(4, ge=1)
    tile: int = Field(160, ge=0, le=4096)

    @model_validator(mode="after")
    def _dc_and_tile(self) -> CTDiffusionConfig:
        if self.dc in ("likelihood", "hard"):
            raise ValueError(f"dc: expected 'cg' (proximal, Poisson-weighted), 'grad' or 'none' for CT, got {self.dc!r}")
        if 0 < self.tile < 8:
            raise ValueError(f"tile: expected 0 (whole slices) or at least 8 pixels, got {self.tile}")
        return self

    @property
    def init_iterations(self) -> int:
        """Iterations of the warm start's estimate (0 for FBP)."""
        return DEFAULT_ITERS.get(self.init, 0) if self.init_iters is None else self.init_iters


def recommended_settings(info: dict, arc_deg: float) -> dict:
    """A CT prior's recommended settings for the arc nearest to ``arc_deg``.

    ``prior.json`` may hold ``"recommended": {"ct": {"arc_deg": {"90": {...}, "120": {...}}}}``;
    without it the result is ``{}`` (the class defaults apply).
    """
    table = info.get("recommended", {}).get("ct", {}).get("arc_deg", {})
    if not table:
        return {}
    return dict(table[min(table, key=lambda k: abs(float(k) - arc_deg))])
