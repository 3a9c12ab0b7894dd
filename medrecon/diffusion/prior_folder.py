"""Reading a prior folder (``prior.safetensors`` + ``prior.json``, written by
:func:`~medrecon.diffusion.training.train_prior`) as a :class:`~medrecon.diffusion.denoiser.Denoiser`.

The JSON is checked before the network is built and the weights are read with ``safetensors``
(no pickle); every problem is an :class:`~medrecon.errors.InputFileError` naming the file and key.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputFileError
from .denoiser import PREDICTIONS, Denoiser, EpsilonDenoiser, Regressor, ScoreDenoiser, UNetPrior
from .schedule import VESchedule, VPSchedule

OBJECTIVES = ("ddpm", "score", "regression")


def load_prior(path: str | Path, device: str | torch.device = "cpu") -> Denoiser:
    """Load a prior folder (``prior.safetensors`` + ``prior.json``) as a :class:`Denoiser`.

    Raises:
        InputFileError: missing files, a JSON without the expected keys, weights that are not
            safetensors or do not match the network the JSON describes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = Path(path)
    wj, ws = p / "prior.json", p / "prior.safetensors"
    for f in (wj, ws):
        if not f.is_file():
            raise InputFileError(f, "file", "a prior folder with prior.safetensors and prior.json", "missing")
    try:
        info = json.loads(wj.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputFileError(wj, "file", "JSON", f"unparseable ({err})") from None
    except OSError as err:
        raise InputFileError(wj, "file", "a readable prior.json", f"unreadable ({err.strerror})") from None
    if not isinstance(info, dict):
        raise InputFileError(wj, "document", "a JSON object (written by medrecon train)", type(info).__name__)
    for key in ("prior", "objective", "schedule"):
        if key not in info:
            raise InputFileError(wj, key, "present", "missing")
    if info["objective"] not in OBJECTIVES:
        raise InputFileError(wj, "objective", f"one of {OBJECTIVES}", repr(info["objective"]))
    try:
        net = UNetPrior(**info["prior"])
    except TypeError as err:
        raise InputFileError(wj, "prior", "UNetPrior constructor arguments", str(err)) from None
    try:
        state = load_file(str(ws))
    except (SafetensorError, OSError) as err:
        raise InputFileError(ws, "file", "safetensors weights", f"unreadable ({err})") from None
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as err:
        raise InputFileError(ws, "weights", "tensors matching prior.json's network", str(err).splitlines()[0]) from None
    if info["objective"] == "regression":
        net.eval().to(device)
        try:
            r: Denoiser = Regressor(net)
        except ValueError as err:
            raise InputFileError(wj, "prior", "a conditional network for objective 'regression'", str(err)) from None
        r.info = info
        return r
    schedule_cls = VPSchedule if info["objective"] == "ddpm" else VESchedule
    values = info["schedule"]
    if not isinstance(values, dict) or any(
        isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) for v in values.values()
    ):
        raise InputFileError(wj, "schedule", f"{schedule_cls.__name__} arguments: a JSON object of finite numbers", repr(values)[:200])
    try:
        schedule = schedule_cls(**values)
    except (TypeError, ValueError) as err:
        raise InputFileError(wj, "schedule", f"{schedule_cls.__name__} arguments", str(err)) from None
    net.eval().to(device)
    if info["objective"] == "ddpm":
        prediction = info.get("prediction", "epsilon")
        if prediction not in PREDICTIONS:
            raise InputFileError(wj, "prediction", f"one of {PREDICTIONS}", repr(prediction))
        band = (info.get("train_config") or {}).get("timestep_range")
        try:
            d: Denoiser = EpsilonDenoiser(net, schedule, prediction, band)
        except ValueError as err:
            raise InputFileError(wj, "train_config.timestep_range", "two timesteps 0 <= lo < hi < T", f"{band!r} ({err})") from None
    else:
        d = ScoreDenoiser(net, schedule)
    d.info = info  # training provenance: data, steps, crop, image_shape
    return d
