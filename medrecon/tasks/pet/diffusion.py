"""PET with a diffusion prior: the recipe that builds the posterior problem of a batch of slices.

PET priors see ``x = activity / (20 × the slice's mean activity)``
(:data:`~medrecon.datasets.pet_training.PET_NORMALISATION`). Per batch of slices:

1. the classical image (:func:`warm_start`: MAP-EM or filtered OSEM): the warm start, and
   through its mean — which EM preserves, as the counts fix it — the data scale ``c = 20 × mean``
   per slice;
2. a guided prior's condition, the co-registered CT on the PET grid in ``HU / 1000`` as in
   training (or zero: the unguided variant);
3. the Poisson likelihood step on every x̂₀ (:class:`~medrecon.diffusion.consistency.PoissonProximalEM`,
   proximal EM on the counts with the scan's normalisation, attenuation and background);
4. :func:`~medrecon.diffusion.posterior.sample_posterior` → mean and std, back on the count scale,
   then to the source's unit by the sinogram's calibration.

The image-domain mode (``medrecon denoise pet``, PET-DDPM's setting, :func:`denoise_slices`) uses
the same prior and guide without a sinogram.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...datasets.pet_training import PET_MEAN_SCALE, PET_NORMALISATION
from ...datasets.sinogram_io import SinogramFile
from ...diffusion.consistency import PoissonProximalEM
from ...diffusion.denoiser import Denoiser
from ...diffusion.posterior import make_sampler, repeat_items, sample_posterior
from ...errors import ArgumentError
from ...physics.linop import Identity, RepeatItems
from ...physics.pet import EmissionOperator
from .config import DEFAULT_ITERS, PETDenoiseConfig, PETDiffusionConfig, recommended_classical
from .em import gaussian_postfilter, map_em_rdp, osem
from .simulate import calibration

PIXEL_TOLERANCE = 0.05


def guided(denoiser: Denoiser) -> bool:
    """Whether the prior takes a guide image (condition channels)."""
    return int(getattr(denoiser, "info", {}).get("prior", {}).get("cond_channels", 0)) > 0


def check_prior_for_pet(
    denoiser: Denoiser, pixel_mm: float, cfg: PETDiffusionConfig | PETDenoiseConfig, has_guide: bool, source: str
) -> None:
    """Fail before any expensive work when the prior does not fit the data or the settings.

    Raises:
        ArgumentError: not a PET prior; a pixel size more than 5 % from the prior's; a guided prior
            asked for the CT guide when the data carry none; a sampler that does not fit.
    """
    info = getattr(denoiser, "info", {})
    if info.get("normalisation") != PET_NORMALISATION or denoiser.complex_data:
        raise ArgumentError(
            f"prior: expected a PET prior (trained on {PET_NORMALISATION!r}), got one with normalisation "
            f"{info.get('normalisation')!r} ({info.get('data', '')[:60]})"
        )
    trained = info.get("pixel_mm")
    if trained is not None and abs(pixel_mm - float(trained)) > PIXEL_TOLERANCE * float(trained):
        raise ArgumentError(
            f"{source}: pixel size: expected {float(trained):.4g} mm (±{PIXEL_TOLERANCE:.0%}) like the prior's training data, got {pixel_mm:.4g} mm"
        )
    if guided(denoiser) and cfg.guide == "ct" and not has_guide:
        raise ArgumentError(f"{source}: guide: this prior is CT-guided and the data carry no CT; give one, or --set guide=none")
    try:
        make_sampler(denoiser, cfg)
    except ValueError as err:
        raise ArgumentError(f"steps: {err}") from None


def warm_start(op: EmissionOperator, counts: torch.Tensor, background: torch.Tensor, cfg: PETDiffusionConfig) -> torch.Tensor:
    """The classical image ``(S, H, W)`` the chain starts from (``cfg.init``), on the count scale of ``op``."""
    if cfg.init == "mapem":
        beta = recommended_classical(float(counts.sum(dim=(-2, -1)).mean()))["beta"]
        return map_em_rdp(op, counts, background, beta, iterations=DEFAULT_ITERS["mapem"], subsets=8)
    return gaussian_postfilter(osem(op, counts, background, cfg.init_iters, 8), cfg.init_fwhm_mm, op.geometry.voxel_size_mm[0])


def reconstruct_slices(
    op: EmissionOperator,
    counts: torch.Tensor,
    background: torch.Tensor,
    guide_hu: torch.Tensor | None,
    denoiser: Denoiser,
    cfg: PETDiffusionConfig,
    generator: torch.Generator,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std ``(S, H, W)`` on the count scale of ``op`` (as OSEM's image).

    Args:
        op: the scan's emission operator for the ``S`` slices; counts / background ``(S, V, D)``.
        guide_hu: ``(S, H, W)`` CT in HU on the PET grid, or None.
    """
    s = counts.shape[0]
    x_init = warm_start(op, counts, background, cfg)
    scale = (PET_MEAN_SCALE * x_init.mean(dim=(-2, -1))).clamp(min=1e-12)
    cond = None
    if guided(denoiser):
        cond = torch.zeros((s, 1, *x_init.shape[1:]), device=counts.device)
        if cfg.guide == "ct" and guide_hu is not None:
            cond = (guide_hu / 1000.0)[:, None].to(counts.device)
    n = cfg.samples
    likelihood = PoissonProximalEM(
        RepeatItems(op, n), repeat_items(counts, n), repeat_items(background, n), repeat_items(scale, n), cfg.dc_lam, cfg.dc_iters
    )
    post = sample_posterior(
        denoiser,
        cfg,
        tuple(x_init.shape),
        generator,
        likelihood=likelihood,
        cond=cond,
        x_start=x_init / scale[:, None, None],
        device=counts.device,
        callback=callback,
    )
    c = scale[:, None, None]
    return post.mean.clamp(min=0) * c, post.std * c


def denoise_slices(
    noisy: torch.Tensor,
    guide_hu: torch.Tensor | None,
    denoiser: Denoiser,
    cfg: PETDenoiseConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image-domain denoising of ``(S, H, W)`` low-count PET images (any unit): mean and std, same unit.

    The images set the scale (``20 × mean``, as in training), the warm start and the measurement of
    the Gaussian proximal step (:class:`~medrecon.tasks.pet.config.PETDenoiseConfig`).
    """
    scale = (PET_MEAN_SCALE * noisy.mean(dim=(-2, -1))).clamp(min=1e-12)[:, None, None]
    y = noisy / scale
    cond = None
    if guided(denoiser):
        cond = torch.zeros((noisy.shape[0], 1, *noisy.shape[1:]), device=noisy.device)
        if cfg.guide == "ct" and guide_hu is not None:
            cond = (guide_hu / 1000.0)[:, None].to(noisy.device)
    post = sample_posterior(
        denoiser, cfg, tuple(noisy.shape), generator, operator=Identity(), y=y, cond=cond, x_start=y, device=noisy.device
    )
    return post.mean.clamp(min=0) * scale, post.std * scale


def reconstruct_sinogram_diffusion(
    sf: SinogramFile, denoiser: Denoiser, cfg: PETDiffusionConfig, device: str = "cpu", progress: Callable[[int, int], None] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every slice of a PET sinogram file, one at a time; activity mean and std in the source's unit."""
    check_prior_for_pet(denoiser, float(sf.geometry.voxel_size_mm[0]), cfg, "guide_hu" in sf.arrays, str(sf.path))
    factors = calibration(sf)
    g = torch.Generator().manual_seed(cfg.seed)
    means, stds = [], []
    for k in range(sf.sino.shape[0]):
        mult = torch.from_numpy(sf.arrays["multiplicative"][[k]])
        op = EmissionOperator(sf.geometry, mult).to(device)
        y, r = (torch.from_numpy(a[[k]]).to(device) for a in (sf.sino, sf.arrays["background"]))
        guide = torch.from_numpy(sf.arrays["guide_hu"][[k]]).to(device) if "guide_hu" in sf.arrays else None
        mean, std = reconstruct_slices(op, y, r, guide, denoiser, cfg, g)
        means.append(mean[0].cpu().numpy() * factors[k])
        stds.append(std[0].cpu().numpy() * factors[k])
        if progress:
            progress(k + 1, sf.sino.shape[0])
    return np.stack(means), np.stack(stds)
