"""OCT speckle denoising with a diffusion prior trained on noisy B-scans only.

The prior (``medrecon train`` with ``intensity: oct``) has seen noisy B-scans, never a clean one, so
its denoiser estimates a *noisy* B-scan. Per batch of B-scans (in order, e.g. neighbours of a
volume):

1. the B-scans go to the prior's scale by the transform its JSON records
   (:func:`~medrecon.datasets.oct_training.to_prior_scale`), and σ̂, the speckle σ of each, is
   estimated there (:func:`~medrecon.tasks.oct.noise.estimate_noise_sigma`);
2. the prior, applied in overlapping windows (:class:`~medrecon.diffusion.tiling.TiledDenoiser`) and,
   with ``mirror``, to every other sample mirrored left-right (:class:`MirroredHalf`), becomes a
   denoiser of the clean B-scan under that noise
   (:class:`~medrecon.diffusion.noisy_data.NoisyDataDenoiser`, Tweedie's formula);
3. :func:`~medrecon.diffusion.posterior.sample_posterior` runs the one sampler loop from the noisy
   B-scan diffused to ``start_level × σ̂`` down to ``end_level × σ̂`` (the batch's median σ̂ sets the
   levels; each B-scan's own σ̂ the denoiser), with the Gaussian likelihood step (identity
   operator, proximal weight ``dc_lam``) and, for volumes, a penalty on differences between
   neighbouring B-scans (``coupling``) in that step;
4. mean and std over the samples, back to the stored scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...datasets.oct_training import OCT_NORMALISATION, from_prior_scale, to_prior_scale
from ...diffusion.denoiser import Denoiser, WrappedDenoiser, check_trained_timesteps
from ...diffusion.noisy_data import MIN_RATIO, NoisyDataDenoiser
from ...diffusion.posterior import make_sampler, repeat_items, sample_posterior
from ...diffusion.tiling import TiledDenoiser
from ...errors import ArgumentError, InputFileError
from ...physics.linop import Identity
from .baselines import NOISE_FLOOR
from .config import OCTDiffusionConfig
from .noise import estimate_noise_sigma


def oct_prior_settings(denoiser: Denoiser) -> dict:
    """The ``oct`` entry of the prior's JSON (transform, full scale, stored data type)."""
    return dict(getattr(denoiser, "info", {}).get("oct", {}))


def check_prior_for_oct(denoiser: Denoiser, dtype: np.dtype, cfg: OCTDiffusionConfig, source: str) -> None:
    """Fail before any work when the prior does not fit the B-scans or the settings.

    Raises:
        ArgumentError: not an OCT prior; a transform other than the prior's asked for; a score
            prior (the chain stops above the data's noise, which needs a DDPM prior).
        InputFileError: B-scans stored in another data type than the prior's training B-scans.
    """
    info = getattr(denoiser, "info", {})
    oct_info = oct_prior_settings(denoiser)
    if info.get("normalisation") != OCT_NORMALISATION or denoiser.complex_data or "transform" not in oct_info:
        raise ArgumentError(
            f"prior: expected an OCT prior (trained with intensity 'oct'), got one with normalisation "
            f"{info.get('normalisation')!r} ({str(info.get('data', ''))[:60]})"
        )
    if cfg.transform is not None and cfg.transform != oct_info["transform"]:
        raise ArgumentError(f"transform: the prior was trained on {oct_info['transform']!r} intensities, got {cfg.transform!r}")
    stored = oct_info.get("stored_dtype")
    if stored is not None and np.dtype(dtype).name != stored:
        raise InputFileError(source, "data type", f"{stored} B-scans like the prior's training data", np.dtype(dtype).name)
    try:
        make_sampler(denoiser, cfg.model_copy(update={"start": 0.5, "end": 0.1, "steps": 1}))
    except ArgumentError as err:
        raise ArgumentError(f"prior: {err}") from None


class MirroredHalf(WrappedDenoiser):
    """``base`` seeing every other batch item mirrored left-right (A-scan order reversed), mirrored back after.

    A left eye's B-scan is a mirrored right eye's, so both orientations are B-scans the prior
    knows. The samples of one B-scan are consecutive batch items, so an even sample count splits
    them evenly between the orientations; their mean then also averages out the part of the
    network's (and the tiling's) error that depends on the orientation, which more samples of
    one orientation do not.

    Args:
        base: the denoiser of images ``(B, H, W)``; its ``schedule``, ``info``, ``net`` are passed through.
    """

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        sigma = self._check(x, sigma)
        odd = (torch.arange(x.shape[0], device=x.device) % 2 == 1).reshape((-1,) + (1,) * (x.ndim - 1))
        c = None if cond is None else torch.where(odd[:, None], cond.flip(-1), cond)
        out = self.base(torch.where(odd, x.flip(-1), x), sigma, c)
        return torch.where(odd, out.flip(-1), out)


def level_fraction(denoiser: Denoiser, sigma: float) -> float:
    """The fraction of the prior's schedule whose noise level is ``sigma`` (clamped to (0, 1])."""
    sched = denoiser.schedule
    t = float(sched.timestep_of_sigma(torch.tensor([sigma], dtype=torch.float64))[0])
    return min(max(t / (sched.num_train_timesteps - 1), 1e-6), 1.0)


def check_levels_trained(denoiser: Denoiser, sigmas: torch.Tensor, top: float, bottom: float | None) -> None:
    """Refuse, before any network evaluation, a chain from level ``top`` down to ``bottom`` (``None``: one step)
    whose network calls — at ``√(τ² − σ̂²)`` for each B-scan's σ̂ ``sigmas (S,)`` — leave the band of
    timesteps a prior was trained on (``TrainConfig.timestep_range``; :class:`NoisyDataDenoiser`)."""
    band = getattr(denoiser, "timestep_range", None)
    if band is None:
        return
    taus = torch.tensor([top] + ([] if bottom is None else [bottom]), dtype=torch.float64)[:, None]
    sd = sigmas.double()[None]
    base = torch.sqrt(torch.maximum(taus**2 - sd**2, (MIN_RATIO * sd) ** 2)).reshape(-1)
    try:
        check_trained_timesteps(denoiser.schedule.timestep_of_sigma(base), band, denoiser.schedule)
    except ArgumentError as err:
        raise ArgumentError(f"start_level / end_level: {err}") from None


def denoise_batch(
    y: torch.Tensor,
    sigmas: torch.Tensor,
    denoiser: Denoiser,
    cfg: OCTDiffusionConfig,
    generator: torch.Generator,
    anchor: torch.Tensor | None = None,
) -> torch.Tensor:
    """Posterior samples ``(S, N, H, W)`` of ``S`` B-scans ``y (S, H, W)`` with σ̂ ``sigmas (S,)``, all on the prior's scale.

    ``anchor`` ``(N, H, W)``: the samples of the B-scan before the first (the previous batch),
    coupled to the first like neighbours within the batch (with ``cfg.coupling``).
    """
    ref = float(sigmas.median())
    start, end = level_fraction(denoiser, cfg.start_level * ref), level_fraction(denoiser, cfg.end_level * ref)
    last = denoiser.schedule.num_train_timesteps - 1
    span = round(start * last) - round(end * last)  # timesteps between the two levels (0 when they coincide)
    settings = cfg.model_copy(update={"start": start, "end": end, "steps": min(cfg.steps, span + 1)})
    check_levels_trained(denoiser, sigmas, cfg.start_level * ref, cfg.end_level * ref if settings.steps > 1 else None)
    net = TiledDenoiser(denoiser, cfg.tile, cfg.overlap) if cfg.tile else denoiser
    clean = NoisyDataDenoiser(MirroredHalf(net) if cfg.mirror else net, repeat_items(sigmas, cfg.samples))
    use_dc = cfg.dc == "cg" and cfg.dc_lam > 0
    if not use_dc:
        settings = settings.model_copy(update={"dc": "none"})
    post = sample_posterior(
        clean,
        settings,
        tuple(y.shape),
        generator,
        operator=Identity() if use_dc else None,
        y=y if use_dc else None,
        x_start=y,
        item_coupling=cfg.coupling if use_dc and (y.shape[0] > 1 or anchor is not None) else 0.0,
        item_anchor=anchor,
        device=y.device,
    )
    return post.samples


def denoise_bscans_diffusion(
    bscans: np.ndarray,
    denoiser: Denoiser,
    cfg: OCTDiffusionConfig,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
    source: str = "the input",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Denoise a stack ``(N, H, W)`` in stored units: mean and std ``(N, H, W)`` float32, σ̂ ``(N,)`` in stored units.

    The stack goes through in batches of ``cfg.batch`` B-scans in order (neighbours together; with
    ``cfg.coupling`` each batch's first B-scan is also coupled to the last of the batch before);
    ``progress(done, total)`` after each batch.

    Raises:
        InputFileError: a B-scan without measurable noise (σ̂ below
            :data:`~medrecon.tasks.oct.baselines.NOISE_FLOOR` of its value range); ``source`` names the input.
    """
    oct_info = oct_prior_settings(denoiser)
    transform, full = oct_info["transform"], float(oct_info["full_scale"])
    x = to_prior_scale(bscans, transform, full)
    sig = np.array([estimate_noise_sigma(b) for b in x])
    for n, s in enumerate(sig):
        if not s > NOISE_FLOOR * float(np.ptp(x[n])):
            raise InputFileError(source, f"B-scan {n}", "speckle noise measurable from the image", f"an estimated noise σ of {s:.3g}")
    g = torch.Generator().manual_seed(cfg.seed)
    means, stds = np.empty(x.shape, np.float32), np.empty(x.shape, np.float32)
    anchor = None
    for a in range(0, len(x), cfg.batch):
        y = torch.from_numpy(x[a : a + cfg.batch]).to(device)
        samples = denoise_batch(y, torch.from_numpy(sig[a : a + cfg.batch]).float(), denoiser, cfg, g, anchor)
        anchor = samples[-1]
        stored = from_prior_scale(samples.cpu().numpy(), transform, full)
        means[a : a + cfg.batch] = stored.mean(axis=1)
        stds[a : a + cfg.batch] = stored.std(axis=1, ddof=1) if cfg.samples > 1 else 0.0
        if progress is not None:
            progress(min(a + cfg.batch, len(x)), len(x))
    sigma_stored = sig * full if transform == "linear" else sig  # log: σ̂ is on the log scale
    return means, stds, sigma_stored
