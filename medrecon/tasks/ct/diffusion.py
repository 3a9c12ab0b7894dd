"""CT with a diffusion prior: the recipe that builds the posterior problem of a batch of slices.

CT priors see ``x = HU / 1000`` (air −1, water 0); the line integrals are ``p = A μ`` with
``μ = μ_water (1 + x)``, so on the prior's scale the data are ``y = p / μ_water − A 1 = A x``
(``A 1``: the line integrals of a uniform water-density image). Per batch of slices:

1. Poisson weights ``w = exp(−p) / mean(exp(−p))`` (the inverse variance of ``−log(counts / I0)``
   up to the dose, which cancels) and the weighted operator ``W^½ A``;
2. the proximal weight ``λ = dc_lam · ||W^½ A||²`` and the z-coupling ``β = z_coupling ·
   ||W^½ A||²`` (:class:`~medrecon.tasks.ct.config.CTDiffusionConfig`): one rule for any geometry;
3. a conditional prior's condition, the FBP image of the scan exactly as training made it
   (:func:`~medrecon.tasks.ct.pairs.condition_image`), or zero for the unconditional variant;
4. the warm start (FBP / SIRT / TV on the same data) on the prior's scale;
5. :func:`~medrecon.diffusion.posterior.sample_posterior` with proximal CG on the weighted normal
   equations (and the slice-difference penalty across the batch, the previous batch's last slice
   held fixed as the first slice's neighbour) → mean and std in HU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ...datasets.sinogram_io import SinogramFile
from ...diffusion.denoiser import Denoiser
from ...diffusion.posterior import Posterior, make_sampler, sample_posterior
from ...diffusion.tiling import windowed
from ...errors import ArgumentError
from ...physics.ct import CTGeometry, CTProjector
from ...physics.ct.transmission import HU_NORMALISATION, HU_PER_UNIT, MU_WATER_PER_MM
from ...physics.linop import Diagonal
from ...solvers.power import operator_norm
from .config import CTDiffusionConfig
from .iterative import sirt, tv_pdhg
from .pairs import condition_image

PIXEL_TOLERANCE = 0.05  # relative pixel-size mismatch accepted between a prior and the data


def check_prior_for_ct(denoiser: Denoiser, geometry: CTGeometry, cfg: CTDiffusionConfig, source: str) -> None:
    """Fail before any expensive work when the prior does not fit the scan or the settings.

    Raises:
        ArgumentError: not a CT prior (another normalisation, complex, 3-D); a pixel size more
            than 5 % from the prior's (no resampling rule: resample the images or train at this
            size); a conditional prior trained on another beam; a sampler that does not fit.
    """
    info = getattr(denoiser, "info", {})
    if info.get("normalisation") != HU_NORMALISATION or denoiser.complex_data:
        raise ArgumentError(
            f"prior: expected a CT prior (real, trained on {HU_NORMALISATION!r}), got one with normalisation "
            f"{info.get('normalisation')!r}{' and complex data' if denoiser.complex_data else ''} ({info.get('data', '')[:60]})"
        )
    if getattr(getattr(denoiser, "net", None), "spatial_dims", 2) != 2:
        raise ArgumentError("prior: a 3-D prior; CT reconstruction samples 2-D slices: use a 2-D prior")
    if geometry.is_3d:
        raise ArgumentError(f"{source}: geometry: expected a 2-D (parallel or fan) scan, got beam {geometry.beam!r}")
    pixel, trained = float(geometry.voxel_size_mm[-1]), info.get("pixel_mm")
    if trained is not None and abs(pixel - float(trained)) > PIXEL_TOLERANCE * float(trained):
        raise ArgumentError(
            f"{source}: pixel size: expected {float(trained):.4g} mm (±{PIXEL_TOLERANCE:.0%}) like the prior's training data, "
            f"got {pixel:.4g} mm; reconstruct at the prior's pixel size or train a prior at this one"
        )
    crop = info.get("train_config", {}).get("crop", 1)
    shape = tuple(info.get("image_shape", ()))
    if crop == 0 and shape and shape != tuple(geometry.image_shape[-2:]):
        raise ArgumentError(f"prior: trained on whole {shape} images, the scan {source} is {tuple(geometry.image_shape)}")
    beam = info.get("condition", {}).get("options", {}).get("beam", "parallel")
    if conditional(denoiser) and cfg.condition == "fbp" and beam != geometry.beam:
        raise ArgumentError(
            f"{source}: geometry: this prior is conditioned on {beam}-beam FBP images, the scan is {geometry.beam} beam; "
            "use a prior trained on this beam, or --set condition=none"
        )
    try:
        make_sampler(denoiser, cfg)
    except ValueError as err:
        raise ArgumentError(f"steps: {err}") from None


def conditional(denoiser: Denoiser) -> bool:
    """Whether the prior takes a condition channel."""
    return bool(getattr(getattr(denoiser, "net", None), "cond_channels", 0))


def reconstruct_slices(
    sino: torch.Tensor,
    geometry: CTGeometry,
    denoiser: Denoiser,
    cfg: CTDiffusionConfig,
    generator: torch.Generator,
    mu_water: float = MU_WATER_PER_MM,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
    initial_hu: torch.Tensor | None = None,
    anchor_hu: torch.Tensor | None = None,
) -> Posterior:
    """Posterior mean, per-pixel std ``(S, H, W)`` and samples ``(S, N, H, W)`` in HU of ``S`` slices of one scan.

    Args:
        sino: ``(S, views, det)`` float32 line integrals (``−log(counts / I0)``).
        geometry: the scan (2-D parallel or fan beam).
        mu_water: the attenuation of water the line integrals were computed with (1/mm).
        initial_hu: ``(S, H, W)`` the warm start's estimate in HU when already computed (e.g. the
            same SIRT image for several settings); ``None``: computed as ``cfg.init`` says.
        anchor_hu: ``(N, H, W)`` each sample of the slice before the first (the previous batch of
            the same volume), in HU: coupled to the first slice like neighbours within the batch.
    """
    op = CTProjector(geometry)
    s_count, shape = sino.shape[0], geometry.image_shape[-2:]
    y = sino / mu_water - op(torch.ones((1, *shape), device=sino.device))
    if cfg.weighting == "poisson":
        w = torch.exp(-sino.double())
        w = (w / w.mean(dim=(1, 2), keepdim=True)).float()
    else:
        w = torch.ones_like(sino)
    wop = Diagonal(w.sqrt()) @ op
    norm2 = operator_norm(wop, torch.zeros((s_count, *shape), device=sino.device), iters=20) ** 2
    cond = None
    if conditional(denoiser):
        cond = (
            condition_image(sino, geometry, op)[:, None]
            if cfg.condition == "fbp"
            else torch.zeros((s_count, 1, *shape), device=sino.device)
        )
    x_start = None
    if cfg.start < 1:
        x_start = _initial_estimate(op, sino, cfg, mu_water) if initial_hu is None else initial_hu.to(sino.device) / HU_PER_UNIT
    post = sample_posterior(
        windowed(denoiser, cfg.tile),
        cfg.model_copy(update={"dc_lam": cfg.dc_lam * norm2}),
        (s_count, *shape),
        generator,
        operator=wop,
        y=w.sqrt() * y,
        cond=cond,
        x_start=x_start,
        item_coupling=cfg.z_coupling * norm2 if cfg.dc == "cg" else 0.0,
        item_anchor=None if anchor_hu is None else anchor_hu.to(sino.device) / HU_PER_UNIT,
        device=sino.device,
        callback=callback,
    )
    return Posterior(mean=post.mean * HU_PER_UNIT, std=post.std * HU_PER_UNIT, samples=post.samples * HU_PER_UNIT)


def reconstruct_volume(
    sino: np.ndarray,
    geometry: CTGeometry,
    denoiser: Denoiser,
    cfg: CTDiffusionConfig,
    mu_water: float = MU_WATER_PER_MM,
    device: str | torch.device = "cpu",
    initial_hu: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std ``(S, H, W)`` float32 in HU of the contiguous slices ``sino (S, views, det)`` of one volume.

    ``cfg.batch_slices`` consecutive slices are sampled together and coupled along z; each batch's
    first slice is coupled to the last slice of the batch before (its samples, held fixed), so the
    batches join without a step. ``initial_hu``: the warm start's estimate ``(S, H, W)`` if already
    computed; ``progress(done, total)`` after each batch.
    """
    g = torch.Generator().manual_seed(cfg.seed)
    n = sino.shape[0]
    means, stds, anchor = [], [], None
    for start in range(0, n, cfg.batch_slices):
        part = slice(start, start + cfg.batch_slices)
        y = torch.from_numpy(np.ascontiguousarray(sino[part])).to(device)
        init = None if initial_hu is None else torch.from_numpy(np.ascontiguousarray(initial_hu[part]))
        post = reconstruct_slices(y, geometry, denoiser, cfg, g, mu_water, initial_hu=init, anchor_hu=anchor)
        anchor = post.samples[-1]
        means.append(post.mean.cpu().numpy().astype(np.float32))
        stds.append(post.std.cpu().numpy().astype(np.float32))
        if progress:
            progress(min(start + cfg.batch_slices, n), n)
    return np.concatenate(means), np.concatenate(stds)


def initial_estimate_hu(
    sino: torch.Tensor, geometry: CTGeometry, cfg: CTDiffusionConfig, mu_water: float = MU_WATER_PER_MM
) -> torch.Tensor:
    """The warm start's estimate ``(S, H, W)`` in HU (FBP, SIRT or TV as ``cfg.init`` says)."""
    return _initial_estimate(CTProjector(geometry), sino, cfg, mu_water) * HU_PER_UNIT


def _initial_estimate(op: CTProjector, sino: torch.Tensor, cfg: CTDiffusionConfig, mu_water: float) -> torch.Tensor:
    """The warm start on the prior's scale: FBP, SIRT or TV of the same line integrals."""
    if cfg.init == "fbp":
        return condition_image(sino, op.geometry, op)
    mu = sirt(op, sino, cfg.init_iterations) if cfg.init == "sirt" else tv_pdhg(op, sino, cfg.tv_lam, cfg.init_iterations)
    return mu / mu_water - 1.0


def reconstruct_sinogram_diffusion(
    sf: SinogramFile,
    denoiser: Denoiser,
    cfg: CTDiffusionConfig,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std volumes ``(S, rows, cols)`` float32 in HU of every slice of a sinogram file.

    ``cfg.batch_slices`` consecutive slices are sampled together (:func:`reconstruct_volume`).
    """
    check_prior_for_ct(denoiser, sf.geometry, cfg, str(sf.path))
    mu_w = float(sf.attrs.get("mu_water_per_mm", MU_WATER_PER_MM))
    if not (math.isfinite(mu_w) and mu_w > 0):
        raise ArgumentError(f"{sf.path}: mu_water_per_mm: expected a positive number, got {mu_w}")
    return reconstruct_volume(sf.sino, sf.geometry, denoiser, cfg, mu_w, device=device, progress=progress)
