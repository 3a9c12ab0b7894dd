"""Training of diffusion priors (DDPM ε- or v-prediction, or VE denoising score matching), resumable.

The same machinery trains the supervised baseline of a conditional prior, ``objective:
regression``: the same network, its image channels zero and its timestep 0, predicts the image
from the condition alone under an L1 loss (:class:`~medrecon.diffusion.denoiser.Regressor`).

- random square crops of the training images (patch training; the network is convolutional, so
  the prior applies to any matrix size at sampling time);
- AdamW, gradient-norm clipping, an exponential moving average (EMA) of the weights;
- bf16 autocast on CUDA (TF32 matmuls stay enabled); float32 on the CPU;
- checkpoints that resume exactly: model, EMA, optimiser state, step and RNG state, stored as
  ``safetensors`` + JSON (never pickle);
- the final prior: EMA weights (``prior.safetensors``, fp16 or fp32) + ``prior.json`` with the
  network's constructor arguments, the objective, the schedule, the data normalisation, the data
  description and the number of training steps;
- the loss curve as ``loss.csv`` and ``loss.png``;
- data-parallel training under ``torchrun`` (DistributedDataParallel; NCCL on GPUs, gloo on
  CPUs): each rank draws its own batches (seed + rank), gradients are averaged, rank 0 writes; the
  checkpoint keeps every rank's RNG state, so a resumed multi-process run continues exactly.

Data normalisation (inverted by reconstruction, recorded in ``prior.json``): by default every
training image is divided by its own 99th percentile of magnitude, so a slice's bright tissue sits
near 1 (MRI); CT priors train on a fixed physical scale instead, ``HU / 1000`` (``data.intensity:
hu``).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from ..errors import InputFileError
from .checkpoint import load_checkpoint, restore_optimizer, save_checkpoint, write_loss_curve
from .denoiser import (
    UNetPrior,
    channels_last,
    noise_embedding,
    to_channels,
)
from .pairs import Simulator, TrainingPairs
from .prior_folder import load_prior
from .schedule import VESchedule, VPSchedule
from .train_config import TrainConfig

NORMALISATION = "per-image 99th percentile of magnitude = 1"


def normalise_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Divide each image ``(N, H, W)`` (or volume ``(N, D, H, W)``) by its 99th percentile of magnitude (see module docstring)."""
    x = torch.as_tensor(images)
    q = torch.quantile(x.abs().reshape(x.shape[0], -1).float(), 0.99, dim=1).clamp(min=1e-12)
    return x / q.reshape((-1,) + (1,) * (x.ndim - 1)).to(x.real.dtype if x.is_complex() else x.dtype)


def _loss(
    prior: torch.nn.Module,
    cfg: TrainConfig,
    x0: torch.Tensor,
    cond: torch.Tensor | None,
    g: torch.Generator,
    g_noise: torch.Generator | None = None,
) -> torch.Tensor:
    g_noise = g if g_noise is None else g_noise
    n = x0.shape[0]
    dev = x0.device
    noise = torch.randn(to_channels(x0).shape, generator=g_noise, device=g_noise.device).to(dev)
    target = noise
    c0 = to_channels(x0)
    if cond is not None and cfg.cond_dropout > 0 and cfg.objective != "regression":
        keep = torch.rand((n,), generator=g) >= cfg.cond_dropout
        cond = cond * keep.to(dev, cond.dtype).reshape((-1,) + (1,) * (cond.ndim - 1))
    if cfg.objective == "regression":  # supervised baseline: image from the condition, L1
        out = prior(torch.zeros_like(c0), torch.zeros((n,), device=dev), cond)
        return torch.mean(torch.abs(out.float() - c0))
    if cfg.objective == "ddpm":
        sched = VPSchedule(cfg.num_train_timesteps)
        lo, hi = cfg.timestep_range or (0, cfg.num_train_timesteps - 1)
        t = torch.randint(lo, hi + 1, (n,), generator=g)
        ab = sched.alphas_cumprod()[t].to(dev).reshape((-1,) + (1,) * (c0.ndim - 1))
        inp = torch.sqrt(ab) * c0 + torch.sqrt(1 - ab) * noise
        out = prior(inp, t.to(dev).float(), cond)
        if cfg.prediction == "v":
            target = torch.sqrt(ab) * noise - torch.sqrt(1 - ab) * c0
    else:
        sched = VESchedule(cfg.sigma_min, cfg.sigma_max)
        sigma = sched.sample_training_sigma(n, g).to(dev)
        s = sigma.reshape((-1,) + (1,) * (c0.ndim - 1))
        inp = (c0 + s * noise) / torch.sqrt(1 + s**2)
        out = prior(inp, noise_embedding(sigma, sched), cond)
    err = out.float() - target
    return torch.mean(torch.abs(err)) if cfg.loss == "l1" else torch.mean(err**2)


def train_prior(
    images: torch.Tensor,
    cfg: TrainConfig,
    out_dir: str | Path,
    prior_args: dict | None = None,
    cond: torch.Tensor | None = None,
    simulate: Simulator | None = None,
    data_description: str = "",
    device: str | torch.device = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
    fp16_weights: bool = False,
    max_seconds: float | None = None,
    init_from: str | Path | None = None,
    pool: int = 0,
    refresh: int = 1,
    normalisation: str = NORMALISATION,
    info: dict | None = None,
) -> dict:
    """Train (or resume) a prior on normalised images and write it to ``out_dir``.

    Args:
        images: ``(N, H, W)`` (``(N, D, H, W)`` volumes for a 3-D prior, ``prior_args["spatial_dims"] = 3``) complex (→ 2-channel prior) or real, already normalised
            (:func:`normalise_images`).
        cfg: training settings.
        out_dir: existing or new folder; a ``checkpoint.*`` pair there is resumed.
        prior_args: :class:`UNetPrior` constructor arguments (channels, attention, ...).
        cond: optional conditioning images ``(N, Cc, H, W)`` real, paired with ``images``.
        simulate: instead of ``cond``, a simulator that makes the condition of each drawn image
            (:class:`~medrecon.diffusion.pairs.TrainingPairs`).
        data_description: recorded in ``prior.json``.
        progress: called as ``progress(step, total, loss)``.
        fp16_weights: store the final EMA weights as float16.
        max_seconds: wall-clock budget of this call; when it is spent, training stops early with a
            checkpoint (resumable up to ``cfg.steps``) and writes the prior with the steps done
            (for time-boxed runs on borrowed GPUs).
        init_from: a prior folder to warm-start from when ``out_dir`` has no checkpoint: its
            (EMA) weights start both the network and the EMA, the step count continues from its
            ``training_steps``, the optimiser starts fresh (a prior keeps no optimiser state; this
            is how training continues across sessions that keep only the fp16 prior).
        pool / refresh: pooled simulation (:class:`~medrecon.diffusion.pairs.TrainingPairs`).
        normalisation: how the images were normalised (recorded; reconstruction inverts it).
        info: further entries of ``prior.json`` (e.g. the pixel size and held-out slices).

    Returns:
        ``{"steps": int, "final_loss": float, "seconds": float}``.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    sd = int((prior_args or {}).get("spatial_dims", 2))
    if images.ndim != 1 + sd:
        raise ValueError(f"images: expected (N, {'D, ' if sd == 3 else ''}H, W) for a {sd}-D prior, got shape {tuple(images.shape)}")
    pairs = TrainingPairs(images, cond, simulate, cfg.crop, cfg.seed, pool, refresh, cfg.crop_focus)
    if simulate is not None:  # one draw tells the condition's channel count
        cond_channels = int(pairs[0][1].shape[0])
    else:
        cond_channels = 0 if cond is None else int(cond.shape[1])
    if cfg.objective == "regression" and cond_channels == 0:
        raise ValueError("objective 'regression': needs condition images (cond or simulate)")
    args = dict(prior_args or {})
    args["image_channels"] = 2 if images.is_complex() else 1
    args["cond_channels"] = cond_channels
    dist = torch.distributed
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    with torch.random.fork_rng(devices=[]):  # initial weights from cfg.seed, global RNG untouched
        torch.manual_seed(cfg.seed)
        prior = UNetPrior(**args).to(device)
    gpu = torch.device(device).type == "cuda"
    if torch.device(device).type == "cpu":  # channels-last weights: oneDNN's fast training path on the CPU
        prior.to(memory_format=channels_last(sd))
    ema = copy.deepcopy(prior).requires_grad_(False)
    # fused AdamW: one kernel per step on GPUs
    opt = torch.optim.AdamW(prior.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True if gpu else None)
    g = torch.Generator().manual_seed(cfg.seed + rank)
    # the noise of each step is drawn where the network runs (on a GPU a host draw + copy costs more
    # than a small network's step); on the CPU it is the same generator as the crops
    g_noise = torch.Generator(device=device).manual_seed(cfg.seed + rank + 7919) if gpu else g
    step, losses = 0, []
    warm: dict = {}
    ck = out / "checkpoint.safetensors"
    if ck.exists():
        t, meta = load_checkpoint(out)  # refuses weights and JSON of two different saves
        warm = meta.get("warm_start", {})
        if meta["prior"] != prior.config:
            raise InputFileError(out / "checkpoint.json", "prior", f"the same network arguments {prior.config}", f"{meta['prior']}")
        for k in ("objective", "prediction"):  # what the network's output means must not change on a resume
            if k in meta.get("config", {}) and meta["config"][k] != getattr(cfg, k):
                raise InputFileError(out / "checkpoint.json", f"config.{k}", repr(getattr(cfg, k)), repr(meta["config"][k]))
        prior.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
        restore_optimizer(opt, {k: v.to(device) for k, v in t.items() if k.startswith("opt.")}, meta["optimizer"])
        key = f"rng.{rank}" if f"rng.{rank}" in t else "rng"
        if world > 1 and key == "rng":
            raise InputFileError(ck, "rng", f"RNG states for {world} ranks", "a single-process checkpoint")
        g.set_state(t[key])
        if gpu:
            nkey = f"rng_noise.{rank}" if world > 1 else "rng_noise"
            if nkey not in t:
                raise InputFileError(ck, nkey, "the GPU noise generator state of a GPU run", "missing (checkpoint from a CPU run)")
            g_noise.set_state(t[nkey])
        step, losses = int(meta["step"]), list(meta["losses"])
    elif init_from is not None:
        src = load_prior(init_from)
        if src.info["prior"] != prior.config:
            raise InputFileError(
                Path(init_from) / "prior.json", "prior", f"the network of this config {prior.config}", f"{src.info['prior']}"
            )
        for k, have in (("objective", src.info["objective"]), ("prediction", getattr(src, "prediction", "epsilon"))):
            if have != getattr(cfg, k):
                raise InputFileError(Path(init_from) / "prior.json", k, repr(getattr(cfg, k)), repr(have))
        with torch.no_grad():
            for mod in (prior, ema):
                mod.load_state_dict(src.net.state_dict())
        step = int(src.info.get("training_steps", 0))
        warm = {"from": str(init_from), "steps": step, "data": src.info.get("data", "")}
    first_step = int(warm.get("steps", 0)) + 1  # the step of losses[0]
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused checkpoint or warm start leaves no folder behind
    model: torch.nn.Module = prior
    if distributed:
        from torch.nn.parallel import DistributedDataParallel

        dev = torch.device(device)
        model = DistributedDataParallel(prior, device_ids=[dev.index or 0] if dev.type == "cuda" else None)
    if gpu:  # the whole training set stays on the GPU: crops are cut there (no host copies)
        pairs.to(device)
    params, ema_params = list(prior.parameters()), list(ema.parameters())
    t0 = time.perf_counter()
    pending: list[torch.Tensor] = []  # losses not yet copied to the host (one sync per flush)

    def flush() -> None:
        if pending:
            losses.extend(torch.stack(pending).float().cpu().tolist())
            pending.clear()

    prior.train()
    while step < cfg.steps:
        xb, cb = pairs.batch(cfg.batch_size, g, step)
        xb = xb.to(device)
        cb = None if cb is None else cb.to(device)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=gpu):
            loss = _loss(model, cfg, xb, cb, g, g_noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        # EMA with warm-up: decay min(ema_decay, (1 + n) / (10 + n)) so a short run's EMA is not
        # dominated by the random initial weights (0.999^300 = 0.74 would be)
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
            for be, bm in zip(ema.buffers(), prior.buffers()):
                be.copy_(bm)
        step += 1
        pending.append(loss.detach())
        if progress and (len(pending) >= 50 or step == cfg.steps):
            flush()
            progress(step, cfg.steps, losses[-1])
        stop = max_seconds is not None and _out_of_time(t0, max_seconds, step, distributed)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
            flush()
            states = [g.get_state()]
            nstates = [g_noise.get_state()] if gpu else None
            if distributed:
                states = [None] * world
                dist.all_gather_object(states, g.get_state())
                if gpu:
                    nstates = [None] * world
                    dist.all_gather_object(nstates, g_noise.get_state())
            if rank == 0:
                save_checkpoint(out, step, prior, ema, opt, states, losses, cfg, nstates, {"warm_start": warm} if warm else None)
            if distributed:
                dist.barrier()
        if stop:
            break
    flush()
    if rank != 0:
        return {"steps": step, "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"), "seconds": time.perf_counter() - t0}
    # final prior: EMA weights + JSON
    weights = {
        k: (v.half() if fp16_weights and v.is_floating_point() else v).detach().cpu().contiguous() for k, v in ema.state_dict().items()
    }
    with atomic_output(out / "prior.safetensors") as tmp:
        save_file(weights, str(tmp))
    info = {
        "format": "medrecon-prior-1",
        "prior": prior.config,
        "objective": cfg.objective,
        "schedule": {}
        if cfg.objective == "regression"
        else asdict(VPSchedule(cfg.num_train_timesteps))
        if cfg.objective == "ddpm"
        else asdict(VESchedule(cfg.sigma_min, cfg.sigma_max)),
        **({"prediction": cfg.prediction} if cfg.objective == "ddpm" and cfg.prediction != "epsilon" else {}),
        "normalisation": normalisation,
        "image_shape": [int(m) for m in images.shape[1:]],
        "data": data_description,
        **(info or {}),
        **({"phase_coherence": phase_coherence(images)} if images.is_complex() else {}),
        "training_steps": step,
        **({"warm_start": warm} if warm else {}),
        "train_config": cfg.model_dump(),
    }
    with atomic_output(out / "prior.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2))
    write_loss_curve(out, losses, first_step)
    return {"steps": step, "final_loss": float(np.mean(losses[-20:])) if losses else float("nan"), "seconds": time.perf_counter() - t0}


def phase_coherence(images: torch.Tensor) -> float:
    """Median over images of ``|Σ x| / Σ |x|``: 1 for images with one phase everywhere, lower the
    more the phase varies across the object (the SIAT images and slices given the synthetic smooth
    phase of :mod:`medrecon.datasets.training_images` score 0.96 and 0.94; an ESPIRiT-combined
    head, whose maps keep one coil's phase, 0.26 — ``benchmarks/bench_diffusion_mri.py``
    prints both). Recorded in ``prior.json``; reconstruction demodulates the smooth phase for
    priors above 0.5 (:mod:`medrecon.recon.phase_estimate`).

    Args:
        images: ``(N, H, W)`` complex.
    """
    x = images.detach().reshape(images.shape[0], -1)
    c = x.sum(dim=1).abs() / x.abs().sum(dim=1).clamp(min=1e-30)
    return round(float(c.median().cpu()), 4)


def _out_of_time(t0: float, max_seconds: float, step: int, distributed: bool) -> bool:
    """Whether the time budget is spent; under torchrun all ranks agree (rank 0 decides, every 20 steps)."""
    if not distributed:
        return time.perf_counter() - t0 >= max_seconds
    if step % 20:
        return False
    dist = torch.distributed
    flag = torch.tensor([float(time.perf_counter() - t0 >= max_seconds)])
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.broadcast(flag, 0)
    return bool(flag.item())
