"""Training state on disk: resumable checkpoints (safetensors + JSON, never pickle) and the loss curve.

``checkpoint.safetensors`` holds the model, the EMA, the optimiser's tensors and every rank's RNG
state; ``checkpoint.json`` the step, the settings, the network's arguments, the optimiser's
scalars and the losses so far. ``loss.csv`` / ``loss.png`` plot the per-step loss with a running mean.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from ..config import Settings
from .denoiser import UNetPrior


def flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state": {}}
    for pid, st in sd["state"].items():
        meta["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta["state"][str(pid)][k] = v
    return tensors, meta


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state = {}
    for pid, scalars in meta["state"].items():
        st = dict(scalars)
        prefix = f"opt.{pid}."
        for k, v in tensors.items():
            if k.startswith(prefix):
                st[k[len(prefix) :]] = v
        state[int(pid)] = st
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(
    out_dir: Path,
    step: int,
    prior: UNetPrior,
    ema: UNetPrior,
    opt: torch.optim.Optimizer,
    rng_states: list[torch.Tensor],
    losses: list,
    cfg: Settings,
    noise_rng_states: list[torch.Tensor] | None = None,
    extra: dict | None = None,
) -> None:
    """Write ``checkpoint.safetensors`` + ``checkpoint.json`` (atomically, one pair).

    ``rng_states``: one generator state per rank (``rng`` for a single process, ``rng.<rank>`` else);
    ``noise_rng_states``: the same for the GPU noise generators (``rng_noise[.<rank>]``), if any;
    ``extra``: more JSON metadata (the warm start).
    """
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in prior.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt_t, opt_meta = flatten_optimizer(opt)
    tensors.update(opt_t)
    for name, states in (("rng", rng_states), ("rng_noise", noise_rng_states or [])):
        if len(states) == 1:
            tensors[name] = states[0]
        else:
            tensors.update({f"{name}.{r}": st for r, st in enumerate(states)})
    with atomic_output(out_dir / "checkpoint.safetensors") as tmp:
        save_file(tensors, str(tmp))
    meta = {"step": step, "config": cfg.model_dump(), "prior": prior.config, "optimizer": opt_meta, "losses": losses, **(extra or {})}
    with atomic_output(out_dir / "checkpoint.json") as tmp:
        tmp.write_text(json.dumps(meta))


def write_loss_curve(out: Path, losses: list[float], first_step: int = 1) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_output(out / "loss.csv") as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "loss"])
            w.writerows((first_step + i, v) for i, v in enumerate(losses))
    fig, ax = plt.subplots(figsize=(5, 3))
    steps = np.arange(first_step, first_step + len(losses))
    ax.semilogy(steps, losses, lw=0.5, alpha=0.35, label="per step")
    # the per-step loss varies with the random noise level far more than it falls: a running mean
    # over 2 % of the run (at least 5 steps) shows the trend
    k = max(5, len(losses) // 50)
    if len(losses) >= 2 * k:
        mean = np.convolve(np.asarray(losses, dtype=np.float64), np.ones(k) / k, mode="valid")
        ax.semilogy(steps[k - 1 :], mean, lw=1.5, color="k", label=f"mean of {k}")
        ax.legend(fontsize=7)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    fig.tight_layout()
    with atomic_output(out / "loss.png") as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
