"""Diffusion priors behind one interface: ``D(x, σ, cond) -> E[x₀ | x]`` on the VE scale.

``x = x₀ + σ n``. Images are complex ``(B, H, W)`` (MRI) or real ``(B, H, W)`` (CT, PET); the
two-channel real layout for complex data exists only inside these adapters. Any matrix size works:
the adapter pads to a multiple of the network's down-sampling factor and crops back.

- :class:`EpsilonDenoiser` wraps a DDPM ε-prediction network trained on the VP process
  ``x_t = √ᾱ x₀ + √(1−ᾱ) ε`` (Ho et al. 2020): ``x_t = x / √(1+σ²)`` at the continuous timestep
  with ``σ_t = σ``, and ``D = x − σ ε̂``; or a v-prediction network (Salimans & Ho 2022,
  ``v = √ᾱ ε − √(1−ᾱ) x₀``), ``D = √ᾱ x_t − √(1−ᾱ) v̂``, whose error is not amplified by σ at high
  noise (an ε error δ costs ``σ δ`` in x̂₀; where the condition alone must determine the image, as
  in translation, that decides the result).
- :class:`ScoreDenoiser` wraps a VE noise-conditional network trained by denoising score matching
  with weight ``λ(σ) = σ²`` (Song et al. 2021): the network predicts ``n`` from
  ``x / √(1+σ²)`` and a log-σ embedding, ``D = x − σ n̂`` and the score is ``(D − x) / σ²``.

Conditioning images (e.g. an FBP image for DOLCE-style CT, an MR image for MR→CT) are extra real
input channels ``(B, Cc, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ArgumentError
from .schedule import VESchedule, VPSchedule
from .train_config import timestep_band


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` complex → ``(B, 2, H, W)`` real; real ``(B, H, W)`` → ``(B, 1, H, W)``."""
    return torch.stack((x.real, x.imag), dim=1) if x.is_complex() else x.unsqueeze(1)


def from_channels(c: torch.Tensor, complex_data: bool) -> torch.Tensor:
    """Inverse of :func:`to_channels`."""
    return torch.complex(c[:, 0], c[:, 1]) if complex_data else c[:, 0]


def channels_last(spatial_dims: int) -> torch.memory_format:
    """The channels-last memory format of a 2-D (NHWC) or 3-D (NDHWC) network's tensors."""
    return torch.channels_last_3d if spatial_dims == 3 else torch.channels_last


class UNetPrior(torch.nn.Module):
    """A MONAI ``DiffusionModelUNet`` (2-D or 3-D) plus the constructor arguments needed to rebuild it.

    Args:
        image_channels: 2 for complex images, 1 for real.
        spatial_dims: 2 (images ``(B, C, H, W)``) or 3 (volumes / patches ``(B, C, D, H, W)``).
        cond_channels: extra conditioning input channels.
        channels, attention_levels, num_res_blocks, num_head_channels, norm_num_groups: passed to
            MONAI's ``DiffusionModelUNet``.
    """

    def __init__(
        self,
        image_channels: int = 2,
        cond_channels: int = 0,
        channels: tuple[int, ...] = (32, 64, 64),
        attention_levels: tuple[bool, ...] = (False, False, True),
        num_res_blocks: int = 1,
        num_head_channels: int = 32,
        norm_num_groups: int = 16,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims: expected 2 or 3, got {spatial_dims}")
        if image_channels not in (1, 2):
            raise ValueError(f"image_channels: expected 1 (real) or 2 (complex), got {image_channels}")
        if cond_channels < 0:
            raise ValueError(f"cond_channels: expected >= 0, got {cond_channels}")
        if len(channels) != len(attention_levels):
            raise ValueError(f"channels / attention_levels: expected equal lengths, got {len(channels)} / {len(attention_levels)}")
        self.config = dict(
            image_channels=image_channels,
            cond_channels=cond_channels,
            channels=list(channels),
            attention_levels=list(attention_levels),
            num_res_blocks=num_res_blocks,
            num_head_channels=num_head_channels,
            norm_num_groups=norm_num_groups,
        )
        if spatial_dims == 3:  # recorded only when not the default, so 2-D priors' JSONs stay as they were
            self.config["spatial_dims"] = 3
        self.spatial_dims = spatial_dims
        self.image_channels = image_channels
        self.cond_channels = cond_channels
        self.multiple = 2 ** (len(channels) - 1)
        self.net = DiffusionModelUNet(
            spatial_dims=spatial_dims,
            in_channels=image_channels + cond_channels,
            out_channels=image_channels,
            num_res_blocks=num_res_blocks,
            channels=tuple(channels),
            attention_levels=tuple(attention_levels),
            num_head_channels=num_head_channels,
            norm_num_groups=norm_num_groups,
        )

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, image_channels, *spatial)``, ``timesteps (B,)`` float, ``cond (B, cond_channels, *spatial)``;
        ``spatial`` is ``(H, W)`` or, for 3-D priors, ``(D, H, W)``."""
        sd = self.spatial_dims
        if x.ndim != 2 + sd:
            raise ValueError(f"x: expected (B, {self.image_channels}, {'D, ' if sd == 3 else ''}H, W), got shape {tuple(x.shape)}")
        size = tuple(x.shape[2:])
        if self.cond_channels:
            if cond is None or cond.shape[1] != self.cond_channels or tuple(cond.shape[2:]) != size:
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond: expected (B, {self.cond_channels}, {', '.join(map(str, size))}), got {got}")
            x = torch.cat((x, cond.to(x.dtype)), dim=1)
        elif cond is not None:
            raise ValueError("cond: this prior was built without conditioning channels")
        pads = [(-n) % self.multiple for n in size]
        if any(pads):
            widths = [w for p in reversed(pads) for w in (p // 2, p - p // 2)]  # F.pad: last dim first
            x = F.pad(x, widths, mode="reflect" if min(size) > max(pads) else "constant")
        # channels-last input on the CPU: with the channels-last weights train_prior keeps, oneDNN
        # trains 1.2-1.3x faster (benchmarks/bench_cpu_layout.py); inference neither gains nor loses
        if x.device.type == "cpu":
            x = x.contiguous(memory_format=channels_last(sd))
        out = self.net(x, timesteps.to(x.dtype))
        return out[(..., *(slice(p // 2, p // 2 + n) for p, n in zip(pads, size)))]


class Denoiser(torch.nn.Module):
    """Base class: ``forward(x, sigma, cond) -> x̂₀`` with ``sigma`` of shape ``(B,)``."""

    complex_data: bool

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _check(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if x.is_complex() != self.complex_data:
            raise TypeError(f"x: this prior expects {'complex' if self.complex_data else 'real'} images, got {x.dtype}")
        sd = getattr(getattr(self, "net", None), "spatial_dims", getattr(self, "spatial_dims", 2))
        if x.ndim != 1 + sd:
            raise ValueError(f"x: expected (B, {'D, ' if sd == 3 else ''}H, W), got shape {tuple(x.shape)}")
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1)
        return sigma.expand(x.shape[0]) if sigma.numel() == 1 else sigma


class WrappedDenoiser(Denoiser):
    """A denoiser built on another, ``base``, whose ``complex_data``, ``schedule``, ``info`` and ``net`` it passes through."""

    def __init__(self, base: Denoiser) -> None:
        super().__init__()
        self.base = base
        self.complex_data = base.complex_data
        self.schedule = getattr(base, "schedule", None)
        self.info = getattr(base, "info", {})
        self.net = getattr(base, "net", None)


PREDICTIONS = ("epsilon", "v")


class EpsilonDenoiser(Denoiser):
    """DDPM network (ε- or v-prediction, ``prediction``) as a VE denoiser (see module docstring).

    ``timestep_range (lo, hi)``: the network was trained on those timesteps only
    (``TrainConfig.timestep_range``); a call at a noise level outside them raises
    :class:`~medrecon.errors.ArgumentError` instead of returning what the network never learnt.
    """

    def __init__(
        self,
        net: UNetPrior,
        schedule: VPSchedule = VPSchedule(),
        prediction: str = "epsilon",
        timestep_range: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"prediction: expected one of {PREDICTIONS}, got {prediction!r}")
        self.timestep_range = None if timestep_range is None else timestep_band(timestep_range, schedule.num_train_timesteps)
        self.net = net
        self.schedule = schedule
        self.prediction = prediction
        self.complex_data = net.image_channels == 2

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        sigma = self._check(x, sigma)
        s = sigma.to(x.real.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        x_t = x / torch.sqrt(1 + s**2)
        t = self.schedule.timestep_of_sigma(sigma).float()
        if self.timestep_range is not None:
            check_trained_timesteps(t, self.timestep_range, self.schedule)
        out = from_channels(self.net(to_channels(x_t), t, cond), self.complex_data)
        if self.prediction == "v":  # √ᾱ = 1/√(1+σ²), √(1−ᾱ) = σ/√(1+σ²)
            return (x_t - s * out) / torch.sqrt(1 + s**2)
        return x - s * out


def check_trained_timesteps(t: torch.Tensor, band: tuple[int, int], schedule: VPSchedule) -> None:
    """Raise :class:`~medrecon.errors.ArgumentError` when a timestep of ``t`` lies outside the trained ``band`` (±0.5)."""
    lo, hi = band
    if bool(torch.any((t < lo - 0.5) | (t > hi + 0.5))):
        sig = schedule.sigmas()
        raise ArgumentError(
            f"noise level: this prior was trained on timesteps {lo}-{hi} only (sigma {float(sig[lo]):.3g}-{float(sig[hi]):.3g} on its "
            f"scale), got timesteps {float(t.min()):.0f}-{float(t.max()):.0f}"
        )


def noise_embedding(sigma: torch.Tensor, schedule: VESchedule) -> torch.Tensor:
    """σ → a timestep-like value in [0, 1000] for the network's sinusoidal embedding (log-linear)."""
    lo, hi = math.log(schedule.sigma_min), math.log(schedule.sigma_max)
    return 1000.0 * (torch.log(sigma.float()) - lo) / (hi - lo)


class ScoreDenoiser(Denoiser):
    """VE noise-conditional (score) network as a denoiser (see module docstring)."""

    def __init__(self, net: UNetPrior, schedule: VESchedule = VESchedule()) -> None:
        super().__init__()
        self.net = net
        self.schedule = schedule
        self.complex_data = net.image_channels == 2

    def noise_embedding(self, sigma: torch.Tensor) -> torch.Tensor:
        """See :func:`noise_embedding`."""
        return noise_embedding(sigma, self.schedule)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        sigma = self._check(x, sigma)
        s = sigma.to(x.real.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        n_hat = from_channels(self.net(to_channels(x / torch.sqrt(1 + s**2)), self.noise_embedding(sigma), cond), self.complex_data)
        return x - s * n_hat


class Regressor(Denoiser):
    """A conditional network trained as a plain regression (``objective: regression``): the image from the condition.

    The supervised baseline of a conditional prior: the same network with its image channels zero
    and timestep 0 predicts ``x`` from ``cond`` (L1 loss, :mod:`medrecon.diffusion.training`).
    As a :class:`Denoiser` it ignores ``x`` and ``sigma``, so the posterior engine runs it with one
    step and returns its prediction (std 0).
    """

    def __init__(self, net: UNetPrior) -> None:
        super().__init__()
        if net.cond_channels == 0:
            raise ValueError("net: a regression network needs condition channels")
        self.net = net
        self.complex_data = net.image_channels == 2

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self._check(x, sigma)
        c = to_channels(torch.zeros_like(x))
        return from_channels(self.net(c, torch.zeros((x.shape[0],), device=x.device), cond), self.complex_data)
