"""Multi-coil MRI with a diffusion prior: the recipe that builds the posterior problem of a slice batch.

Per batch of slices: coil maps (shipped or ESPIRiT) → CG-SENSE image → (optionally) its smooth
phase moved into the maps → data scale = the image's 99th percentile of magnitude (the priors'
training normalisation) → SENSE operator, scaled k-space, support of the maps and the warm-start
estimate (CG-SENSE or CS) → :func:`medrecon.diffusion.posterior.sample_posterior` → mean and
per-pixel std, scaled and rotated back. Sampling, data consistency and CG live in
:mod:`medrecon.diffusion`; this module only builds what is MRI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...datasets.kspace_source import KSpaceSource
from ...diffusion.denoiser import Denoiser
from ...diffusion.posterior import make_sampler, sample_posterior
from ...errors import ArgumentError
from ...physics.crop import center_crop
from ...physics.linop import LinearOperator
from ...physics.mri.sense import FourierOperator, MaskOperator, SenseOperator
from .classical import cg_sense, cs_l1_wavelet
from .config import DiffusionConfig
from .phase import estimate_smooth_phase
from .volume import slice_maps

__all__ = ["DiffusionConfig", "check_prior_for", "demodulates", "reconstruct_slice", "reconstruct_slices", "reconstruct_volume_diffusion"]


def check_prior_for(denoiser: Denoiser, shape: tuple[int, int], cfg: DiffusionConfig, source: str) -> None:
    """Fail before any expensive work when prior and data or sampler do not fit together.

    Raises:
        ArgumentError: a real-valued, 3-D or conditional prior; a whole-image prior of another
            size; a sampler that does not fit the prior or its schedule.
    """
    info = getattr(denoiser, "info", {})
    if not denoiser.complex_data:
        raise ArgumentError(f"prior: expected a complex (2-channel) MRI prior, got a real-valued one ({info.get('data', '')})")
    if getattr(getattr(denoiser, "net", None), "spatial_dims", 2) != 2:
        raise ArgumentError("prior: a 3-D prior; MRI reconstruction samples 2-D slices: use a 2-D prior")
    if getattr(getattr(denoiser, "net", None), "cond_channels", 0):
        raise ArgumentError("prior: this prior needs conditioning images; MRI reconstruction provides none")
    crop = info.get("train_config", {}).get("crop", 1)
    trained = tuple(info.get("image_shape", ()))
    if crop == 0 and trained and trained != tuple(shape):
        raise ArgumentError(
            f"prior: trained on whole {trained} images, the data {source} are {tuple(shape)}; train with crop > 0 for any size"
        )
    try:
        make_sampler(denoiser, cfg)  # sampler against prior type and (possibly truncated) schedule
    except ArgumentError:
        raise
    except ValueError as err:
        raise ArgumentError(f"steps: {err}") from None


def demodulates(denoiser: Denoiser, cfg: DiffusionConfig) -> bool:
    """Whether :func:`reconstruct_slices` removes the smooth phase for this prior (``cfg.phase``)."""
    if cfg.phase != "auto":
        return cfg.phase == "demodulate"
    return float(getattr(denoiser, "info", {}).get("phase_coherence", 0.0)) > 0.5


def reconstruct_slice(
    kspace: torch.Tensor,
    maps: torch.Tensor,
    mask: torch.Tensor,
    denoiser: Denoiser,
    cfg: DiffusionConfig,
    generator: torch.Generator,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean ``(H, W)`` complex and per-pixel std ``(H, W)`` of one slice.

    Args:
        kspace: ``(C, H, W)`` complex64 undersampled k-space.
        maps: ``(C, H, W)`` coil sensitivities.
        mask: real, broadcastable to ``(1, C, H, W)``.
    """
    mean, std = reconstruct_slices(kspace[None], maps[None], mask, denoiser, cfg, generator, callback)
    return mean[0], std[0]


def reconstruct_slices(
    kspace: torch.Tensor,
    maps: torch.Tensor,
    mask: torch.Tensor,
    denoiser: Denoiser,
    cfg: DiffusionConfig,
    generator: torch.Generator,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means ``(S, H, W)`` complex and per-pixel stds ``(S, H, W)`` of ``S`` slices at once.

    All ``S × cfg.samples`` chains run as one batch; each slice keeps its own scale and CG.

    Args:
        kspace: ``(S, C, H, W)`` complex64 undersampled k-space of slices sharing one mask.
        maps: ``(S, C, H, W)`` coil sensitivities.
        mask: real, broadcastable to ``(1, C, H, W)``.
    """
    s_count = kspace.shape[0]
    init = cg_sense(kspace, maps, mask, lam=cfg.sense_lam, iters=cfg.sense_iters)
    rot = None
    if demodulates(denoiser, cfg):  # x = x_d·e^{iφ}, S_d = S·e^{iφ}: S_d x_d = S x
        rot = torch.exp(1j * estimate_smooth_phase(init, cfg.phase_sigma)).to(init.dtype)  # (S, H, W)
        maps = maps * rot[:, None]
        init = init * rot.conj()
    scale = torch.quantile(init.abs().reshape(s_count, -1).float(), 0.99, dim=1).clamp(min=1e-12)
    scale = scale.to(init.real.dtype).reshape(-1, 1, 1)
    y = kspace / scale[:, None]
    op: LinearOperator = SenseOperator(maps.to(kspace.dtype), mask)
    if cfg.dc == "hard":  # single-coil Cartesian: replace the sampled k-space (maps are not used)
        if kspace.shape[1] != 1:
            raise ArgumentError(f"dc 'hard': exact only for single-coil Cartesian data, got {kspace.shape[1]} coils; use 'cg'")
        op, y = MaskOperator(torch.broadcast_to(mask, (1, 1, *kspace.shape[-2:]))[0]) @ FourierOperator(), y[:, 0]
    x_start = None
    if cfg.start < 1:
        est = cs_l1_wavelet(kspace, maps, mask, lam=cfg.cs_lam, iters=cfg.cs_iters) if cfg.init == "cs" else init  # maps demodulated
        x_start = est / scale
    # multi-coil: unobserved pixels (all maps zero) keep zero / the warm start
    support = (maps.abs().amax(dim=1) > 0) if kspace.shape[1] > 1 and cfg.dc != "none" else None
    post = sample_posterior(
        denoiser,
        cfg,
        (s_count, *kspace.shape[-2:]),
        generator,
        operator=op,
        y=y,
        x_start=x_start,
        support=support,
        device=kspace.device,
        callback=callback,
    )
    mean, std = post.mean * scale, post.std * scale
    if rot is not None:
        mean = mean * rot  # back to the phase of the given maps (std is rotation-invariant)
    return mean, std


def reconstruct_volume_diffusion(
    src: KSpaceSource,
    denoiser: Denoiser,
    cfg: DiffusionConfig,
    slices: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean magnitude and std volumes ``(S, rows, cols)`` float32 (cropped to the recon size).

    ``cfg.batch_slices`` slices are sampled together in one batch (:func:`reconstruct_slices`).
    """
    batch_slices = cfg.batch_slices
    idx = list(range(src.num_slices)) if slices is None else list(slices)
    for i in idx:
        if not 0 <= i < src.num_slices:
            raise ArgumentError(f"--slices: expected indices 0..{src.num_slices - 1} of {src.path}, got {i} (out of range)")
    check_prior_for(denoiser, src.shape[1:], cfg, str(src.path))
    mask = torch.from_numpy(src.sampling_pattern(idx[0]))[None, None].to(device)
    g = torch.Generator().manual_seed(cfg.seed)
    means, stds = [], []
    rs = src.geometry.recon_size
    for start in range(0, len(idx), batch_slices):
        chunk = idx[start : start + batch_slices]
        ks = [torch.from_numpy(src.kspace(i)).to(device) for i in chunk]
        maps = torch.stack([slice_maps(src, i, k) for i, k in zip(chunk, ks)])
        mean, std = reconstruct_slices(torch.stack(ks), maps, mask, denoiser, cfg, g)
        for m, s in zip(mean.abs().cpu().numpy().astype(np.float32), std.cpu().numpy().astype(np.float32)):
            if rs is not None and rs[0] <= m.shape[0] and rs[1] <= m.shape[1]:
                m, s = center_crop(m, rs), center_crop(s, rs)
            means.append(m)
            stds.append(s)
        if progress:
            progress(start + len(chunk), len(idx))
    return np.stack(means), np.stack(stds)
