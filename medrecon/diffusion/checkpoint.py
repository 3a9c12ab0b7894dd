"""Training state on disk: resumable checkpoints (safetensors + JSON, never pickle) and the loss curve.

``checkpoint.safetensors`` holds the model, the EMA, the optimiser's tensors and every rank's RNG
state; ``checkpoint.json`` the step, the settings, the network's arguments, the optimiser's
scalars and the losses so far. ``loss.csv`` / ``loss.png`` plot the per-step loss with a running mean.

The two files are renamed into place one after the other, so a run killed between the two renames
leaves the weights of one save beside the JSON of another. Both therefore carry the step and a
token unique to each save (the safetensors in its header metadata); :func:`load_checkpoint`
refuses a pair whose step or token disagree instead of resuming from mismatched state.
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_output
from ..config import Settings
from ..errors import InputFileError
from .denoiser import UNetPrior

CHECKPOINT_WEIGHTS, CHECKPOINT_JSON = "checkpoint.safetensors", "checkpoint.json"


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
    save_id = uuid.uuid4().hex  # ties this save's two files together
    with atomic_output(out_dir / CHECKPOINT_WEIGHTS) as tmp:
        save_file(tensors, str(tmp), metadata={"step": str(step), "save_id": save_id})
    meta = {
        "step": step,
        "save_id": save_id,
        "config": cfg.model_dump(),
        "prior": prior.config,
        "optimizer": opt_meta,
        "losses": losses,
        **(extra or {}),
    }
    with atomic_output(out_dir / CHECKPOINT_JSON) as tmp:
        tmp.write_text(json.dumps(meta))


def load_checkpoint(out_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read the ``checkpoint.safetensors`` + ``checkpoint.json`` pair of ``out_dir`` and check that it is one save.

    Checkpoints written before the weights carried metadata (neither file has a ``save_id``) are
    read as they are.

    Returns:
        The tensors (on the CPU) and the JSON metadata.

    Raises:
        InputFileError: a file missing or unreadable, or the two files from different saves (their
            steps or save tokens differ: a run killed between the two renames).
    """
    from safetensors import SafetensorError, safe_open

    weights, js = out_dir / CHECKPOINT_WEIGHTS, out_dir / CHECKPOINT_JSON
    try:
        meta = json.loads(js.read_text())
    except FileNotFoundError:
        raise InputFileError(js, "file", f"the JSON half of the checkpoint beside {weights.name}", "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputFileError(js, "file", "checkpoint JSON", f"unreadable ({err.__class__.__name__})") from None
    if not isinstance(meta, dict) or not {"step", "prior", "optimizer", "losses"} <= set(meta):
        raise InputFileError(js, "document", "a checkpoint written by medrecon train", "other JSON")
    try:
        with safe_open(str(weights), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as err:
        raise InputFileError(weights, "file", "safetensors checkpoint weights", f"unreadable ({err})") from None
    if "save_id" in meta or "save_id" in header:
        two = "the two files are from different saves (a run stopped while saving?); remove both to start over"
        if header.get("step") != str(meta["step"]):
            got = f"step {header.get('step', 'unrecorded')}: {two}"
            raise InputFileError(weights, "step", f"step {meta['step']}, the step of {js.name}", got)
        if header.get("save_id") != meta.get("save_id"):
            raise InputFileError(weights, "save_id", f"the save token of {js.name}", f"another save's token: {two}")
    return tensors, meta


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
