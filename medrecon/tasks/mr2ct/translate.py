"""Synthetic CT from an MR (or a NAC-PET) with a conditional prior: the recipe of ``translate mr2ct``.

There is no forward operator: the condition (the MR slices, 2.5-D: slice ``k`` and its
neighbours) enters the network as input channels, and the posterior engine
(:func:`~medrecon.diffusion.posterior.sample_posterior`, ``dc = "none"``) draws ``samples`` CT
slices per MR slice; their mean (or per-voxel median) is the synthetic CT and their std the
per-voxel uncertainty. Two things keep a volume coherent across slices: the 2.5-D condition, and
with ``shared_noise`` every slice of one sample starting from the same noise (optionally
``coupling``, a quadratic penalty between neighbouring slices at every step).

A regression prior (``objective: regression``, the supervised L1 baseline) predicts each slice
in one pass instead.

The MR is resampled onto the prior's grid (:mod:`medrecon.tasks.mr2ct.grid`), divided by its
:func:`~medrecon.datasets.mr_volume.mr_scale`, translated, and the CT (``HU / 1000`` on the prior's
scale) resampled back onto the MR's grid.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ...datasets.ct_training import HU_RANGE
from ...datasets.mr_volume import MRVolume, contrast_fingerprint, fingerprint_distance, mr_scale
from ...datasets.pet_training import PET_MEAN_SCALE
from ...datasets.sct_training import stack_neighbours
from ...diffusion.denoiser import Denoiser, Regressor
from ...diffusion.mirror_views import MirroredDenoiser, mirror_dim
from ...diffusion.posterior import PosteriorSettings, make_sampler, repeat_items, sample_posterior
from ...diffusion.schedule import VESchedule
from ...diffusion.tiling import TiledDenoiser, windowed
from ...errors import ArgumentError
from ...physics.ct.transmission import HU_PER_UNIT
from .config import TranslateConfig
from .grid import Grid, prior_grid, resample


@dataclass(frozen=True)
class SyntheticCT:
    """``hu (slices, rows, cols)`` float32 on the MR's grid; ``std`` the same shape (HU) or ``None``; ``notes``."""

    hu: np.ndarray
    std: np.ndarray | None
    notes: list[str]


def check_prior_for_sct(denoiser: Denoiser, source: str, modality: str = "MR") -> dict:
    """The prior's ``prior.json`` entries translation needs, or one clear error.

    Raises:
        ArgumentError: a prior that is not a synthetic-CT prior conditioned on ``modality``.
    """
    info = getattr(denoiser, "info", {})
    cond = info.get("condition") if isinstance(info.get("condition"), dict) else {}
    if info.get("modality") != "CT" or cond.get("modality") != modality or not all(k in info for k in ("pixel_mm", "slice_mm", "axcodes")):
        raise ArgumentError(
            f"--prior: expected a synthetic-CT prior conditioned on {modality} (medrecon train with intensity: sct), "
            f"got one for modality {info.get('modality')!r} with condition {cond.get('modality', cond.get('guide'))!r}"
        )
    return info


def recommended_settings(denoiser: Denoiser, task: str) -> dict:
    """The ``translate`` settings the prior's ``prior.json`` recommends for ``task`` (``mr2ct`` / ``pet2ct``); ``{}`` if none."""
    return getattr(denoiser, "info", {}).get("recommended", {}).get(task, {})


def sampler_for(denoiser: Denoiser, cfg: TranslateConfig) -> str:
    """The sampler ``cfg`` names, else ``ddim`` for DDPM priors and ``ve_ode`` for score priors."""
    if cfg.sampler is not None:
        return cfg.sampler
    return "ve_ode" if isinstance(getattr(denoiser, "schedule", None), VESchedule) else "ddim"


def posterior_settings(denoiser: Denoiser, cfg: TranslateConfig) -> PosteriorSettings:
    """The posterior engine's settings for ``cfg``, checked against the prior (a sampler of the other family is refused)."""
    settings = PosteriorSettings(
        sampler=sampler_for(denoiser, cfg),
        steps=cfg.steps,
        eta=cfg.eta,
        dc="none",
        dc_iters=10,
        samples=cfg.samples,
        seed=cfg.seed,
        start=cfg.start,
    )
    if not isinstance(denoiser, Regressor):
        make_sampler(denoiser, settings)
    return settings


def mirror_views_dim(denoiser: Denoiser, cfg: TranslateConfig) -> int | None:
    """The image axis mirror views flip (``cfg.mirror``; from the prior's ``axcodes``), or ``None``
    when there are none: mirror views off, no left–right axis in the slices, or one sample of a
    diffusion prior (a regression always has two views: its plain and mirrored predictions)."""
    dim = mirror_dim(getattr(denoiser, "info", {}).get("axcodes", ())) if cfg.mirror else None
    return dim if views_per_slice(denoiser, cfg) > 1 else None


def views_per_slice(denoiser: Denoiser, cfg: TranslateConfig) -> int:
    """Network outputs per slice: ``cfg.samples`` for a diffusion prior, two for a regression with
    mirror views (its plain and mirrored predictions), else one."""
    if isinstance(denoiser, Regressor):
        return 2 if cfg.mirror else 1
    return cfg.samples


def first_estimate(
    net: Denoiser,
    denoiser: Denoiser,
    settings: PosteriorSettings,
    shape: tuple[int, ...],
    generator: torch.Generator,
    cond: torch.Tensor,
    shared_noise: bool = False,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """The warm start of a chain with ``settings.start < 1``: the mean over ``settings.samples`` of
    the prior's one-evaluation estimate (x̂₀ from pure noise at the top of its schedule, DDIM or
    probability-flow ODE), ``shape`` on the prior's scale. ``net`` is ``denoiser`` as the chain sees
    it (windows, mirror views)."""
    first = settings.model_copy(update={"sampler": sampler_for(denoiser, TranslateConfig()), "steps": 1, "start": 1.0})
    return sample_posterior(net, first, shape, generator, cond=cond, shared_noise=shared_noise, device=device).mean


def sample_slices(
    cond: torch.Tensor, denoiser: Denoiser, cfg: TranslateConfig, device: str | torch.device = "cpu"
) -> Iterator[torch.Tensor]:
    """Condition slices ``(S, Cc, H, W)`` on the prior's scale → CT samples ``(s, N, H, W)`` in HU, one batch at a time.

    Slices go through in batches of ``cfg.batch``, coupled along z within a batch and, with the
    previous batch's last slice held fixed, across batches. A regression prior gives one
    "sample" per slice. With ``cfg.mirror`` every other sample (a regression: the mean of two
    predictions) is drawn on the left–right mirrored slices (:mod:`~medrecon.diffusion.mirror_views`).
    """
    regression = isinstance(denoiser, Regressor)
    settings = posterior_settings(denoiser, cfg)
    net = windowed(denoiser, cfg.tile)
    dim = mirror_views_dim(denoiser, cfg)
    if dim is not None:
        net = MirroredDenoiser(net, views_per_slice(denoiser, cfg), dim)
    g = torch.Generator().manual_seed(cfg.seed)
    anchor = None  # the previous batch's last slice (its samples): the first slice's fixed neighbour
    for a in range(0, cond.shape[0], cfg.batch):
        c = cond[a : a + cfg.batch].to(device)
        shape = (c.shape[0], *c.shape[2:])
        if regression:
            n = 2 if isinstance(net, MirroredDenoiser) else 1
            with torch.no_grad():
                pred = net(torch.zeros((n * shape[0], *shape[1:]), device=device), torch.zeros(n * shape[0]), repeat_items(c, n))
            yield pred.reshape(shape[0], n, *shape[1:]).mean(dim=1, keepdim=True) * HU_PER_UNIT
            continue
        gen = torch.Generator().manual_seed(cfg.seed) if cfg.shared_noise else g  # the same noise in every batch
        x_start = first_estimate(net, denoiser, settings, shape, gen, c, cfg.shared_noise, device) if settings.start < 1 else None
        post = sample_posterior(
            net,
            settings,
            shape,
            gen,
            cond=c,
            x_start=x_start,
            item_coupling=cfg.coupling,
            item_anchor=anchor,
            shared_noise=cfg.shared_noise,
            device=device,
        )
        anchor = post.samples[-1]
        yield post.samples * HU_PER_UNIT


def summarise_samples(samples_hu: torch.Tensor, summary: str = "mean") -> tuple[torch.Tensor, torch.Tensor | None]:
    """Samples ``(S, N, H, W)`` in HU → the synthetic CT (their mean, or their per-voxel median: the
    middle value, the mean of the two middle values for even ``N``) clipped to the CT range, and
    their std (``None`` for one sample)."""
    n = samples_hu.shape[1]
    if summary == "median" and n > 2:
        ordered = samples_hu.sort(dim=1).values
        centre = ordered[:, (n - 1) // 2 : n // 2 + 1].mean(dim=1)
    else:
        centre = samples_hu.mean(dim=1)
    return centre.clamp(*HU_RANGE), (samples_hu.std(dim=1) if n > 1 else None)


def translate_slices(
    cond: torch.Tensor,
    denoiser: Denoiser,
    cfg: TranslateConfig,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Condition slices ``(S, Cc, H, W)`` on the prior's scale → CT ``(S, H, W)`` in HU (the samples'
    ``cfg.summary``) and their std (``None`` for one sample), :func:`sample_slices` batch by batch;
    ``progress(n)`` is called after each batch with the slices done in it."""
    means, stds = [], []
    for samples in sample_slices(cond, denoiser, cfg, device):
        mean, std = summarise_samples(samples, cfg.summary)
        means.append(mean.cpu().numpy())
        if std is not None:
            stds.append(std.cpu().numpy())
        if progress is not None:
            progress(samples.shape[0])
    return np.concatenate(means).astype(np.float32), (np.concatenate(stds).astype(np.float32) if stds else None)


def translate_block(
    volume: torch.Tensor, denoiser: Denoiser, cfg: TranslateConfig, device: str | torch.device = "cpu"
) -> tuple[np.ndarray, np.ndarray | None]:
    """A normalised condition volume ``(S, H, W)`` → CT mean and std ``(S, H, W)`` in HU with a 3-D prior.

    The whole volume is one item; the network sees it in overlapping ``tile³`` windows
    (:class:`~medrecon.diffusion.tiling.TiledDenoiser`), so memory is bounded by the tile.
    """
    tiled = TiledDenoiser(denoiser, tile=cfg.tile or 64, overlap=0.25, max_batch=4)
    cond = volume[None, None].to(device)
    if isinstance(denoiser, Regressor):
        with torch.no_grad():
            samples = tiled(torch.zeros((1, *volume.shape), device=device), torch.zeros(1), cond)[:, None]
    else:
        settings, shape, gen = posterior_settings(denoiser, cfg), (1, *volume.shape), torch.Generator().manual_seed(cfg.seed)
        x_start = first_estimate(tiled, denoiser, settings, shape, gen, cond, device=device) if settings.start < 1 else None
        samples = sample_posterior(tiled, settings, shape, gen, cond=cond, x_start=x_start, device=device).samples
    centre, spread = summarise_samples(samples * HU_PER_UNIT, cfg.summary)
    return centre[0].cpu().numpy().astype(np.float32), None if spread is None else spread[0].cpu().numpy().astype(np.float32)


def translate_mr(
    mr: MRVolume,
    denoiser: Denoiser,
    cfg: TranslateConfig,
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> SyntheticCT:
    """A synthetic CT of ``mr`` on the MR's own grid (see the module docstring).

    Raises:
        ArgumentError: a prior that is not an MR-conditioned synthetic-CT prior.
    """
    return translate_volume(mr.values, mr.affine, mr.source, denoiser, cfg, "MR", device, progress)


def translate_volume(
    values: np.ndarray,
    affine: np.ndarray,
    source: str,
    denoiser: Denoiser,
    cfg: TranslateConfig,
    modality: str = "MR",
    device: str | torch.device = "cpu",
    progress: Callable[[int], None] | None = None,
) -> SyntheticCT:
    """A synthetic CT of an MR or NAC-PET volume ``(slices, rows, cols)`` on its own grid ``affine``.

    MR is divided by its :func:`~medrecon.datasets.mr_volume.mr_scale` (and its contrast
    fingerprint compared with the prior's); PET slice by slice by
    :func:`~medrecon.datasets.pet_training.pet_scale` on the prior's grid.

    Raises:
        ArgumentError: a prior that is not a synthetic-CT prior conditioned on ``modality``.
    """
    info = check_prior_for_sct(denoiser, source, modality)
    notes = []
    if modality == "MR":
        scale = mr_scale(values, source)
        expected = info["condition"].get("fingerprint")
        dist = None if expected is None else fingerprint_distance(expected, contrast_fingerprint(values / scale))
        if dist is not None and dist > cfg.contrast_tolerance:
            notes.append(
                f"warning: {source}: the MR's intensity distribution differs from the prior's training MR "
                f"(contrast fingerprint distance {dist:.3f} > {cfg.contrast_tolerance:g}); another contrast (T2, FLAIR), "
                "a skull-stripped image or a wrong orientation gives a wrong synthetic CT"
            )
    row, col = info["pixel_mm"]
    grid = prior_grid(values.shape, affine, info["axcodes"], (col, row, info["slice_mm"]))
    if grid.shape != values.shape or not np.allclose(grid.affine, affine, atol=1e-4):
        notes.append(
            f"resampled {values.shape} onto the prior's grid {grid.shape} "
            f"({''.join(info['axcodes'])}, {col:.3g} x {row:.3g} x {info['slice_mm']:.3g} mm) and back"
        )
    on_grid = resample(values, affine, grid, 0.0)
    if modality == "MR":
        on_grid = on_grid / scale
    else:
        means = on_grid.reshape(on_grid.shape[0], -1).mean(axis=1)
        on_grid = on_grid / np.where(means > 0, PET_MEAN_SCALE * means, 1.0)[:, None, None]  # empty slices stay zero
    if getattr(denoiser.net, "spatial_dims", 2) == 3:
        mean, std = translate_block(torch.from_numpy(on_grid.astype(np.float32)), denoiser, cfg, device)
    else:
        n = int(info["condition"].get("neighbours", 0))
        cond = torch.from_numpy(stack_neighbours(on_grid.astype(np.float32), np.ones(grid.shape[0], bool), n))
        mean, std = translate_slices(cond, denoiser, cfg, device, progress)
    own = Grid(tuple(values.shape), affine)
    hu = resample(mean, grid.affine, own, HU_RANGE[0])
    return SyntheticCT(hu, None if std is None else resample(std, grid.affine, own, 0.0), notes)


def print_notes(notes: list[str]) -> None:
    """Notes and warnings of a translation on stderr, one line each."""
    for note in notes:
        print(f"medrecon: {note}", file=sys.stderr)
