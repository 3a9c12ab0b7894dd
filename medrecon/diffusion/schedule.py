"""Noise schedules as stateless maths (no network, no sampler state).

Every schedule is expressed on one common scale, the variance-exploding (VE) noise level σ:
``x_σ = x₀ + σ n``. A variance-preserving (DDPM) state ``x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε`` is the VE
state ``x_t / √ᾱ_t`` with ``σ_t = √((1 − ᾱ_t) / ᾱ_t)`` (Karras et al. 2022, Table 1), so one
``Denoiser D(x, σ)`` serves both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class VPSchedule:
    """DDPM linear-β schedule (Ho et al. 2020), identical to MONAI's ``linear_beta``.

    Attributes:
        num_train_timesteps: ``T``.
        beta_start, beta_end: the linear β range.
    """

    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 2e-2

    def __post_init__(self) -> None:
        if self.num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps: expected >= 2, got {self.num_train_timesteps}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"beta_start / beta_end: expected 0 < start < end < 1, got {self.beta_start} / {self.beta_end}")

    def betas(self) -> torch.Tensor:
        """``(T,)`` float32 β_t."""
        return torch.linspace(self.beta_start, self.beta_end, self.num_train_timesteps, dtype=torch.float32)

    def alphas_cumprod(self) -> torch.Tensor:
        """``(T,)`` float32 ᾱ_t = Π (1 − β_s)."""
        return torch.cumprod(1.0 - self.betas(), dim=0)

    def sigmas(self) -> torch.Tensor:
        """``(T,)`` VE-equivalent noise levels σ_t = √((1 − ᾱ_t)/ᾱ_t) (float64)."""
        ab = self.alphas_cumprod().double()
        return torch.sqrt((1 - ab) / ab)

    def timestep_of_sigma(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous timestep with ``σ_t = sigma`` (linear interpolation in log σ), clamped to ``[0, T−1]``."""
        log_s = torch.log(self.sigmas()).to(sigma.device)
        ls = torch.log(torch.clamp(sigma.double(), min=1e-12))
        idx = torch.clamp(torch.searchsorted(log_s, ls), 1, len(log_s) - 1)
        lo, hi = log_s[idx - 1], log_s[idx]
        frac = torch.clamp((ls - lo) / (hi - lo), 0.0, 1.0)
        return (idx - 1).double() + frac

    def ve_span(self) -> VESchedule:
        """The VE schedule over this schedule's noise levels ``σ_0 … σ_{T−1}`` (a DDPM prior's VE samplers).

        The VP state is the VE state scaled by ``√ᾱ_t`` (Karras et al. 2022, Table 1), so both
        have the same marginals up to that scale: Euler–Maruyama, predictor–corrector and the
        probability-flow ODE of the VE SDE sample a DDPM prior on this range.
        """
        sig = self.sigmas()
        return VESchedule(float(sig[0]), float(sig[-1]))

    def max_steps(self, start: float = 1.0) -> int:
        """Most steps a chain starting at ``start`` (fraction of ``T − 1``) can take: ``t₀ + 1``."""
        if not 0 < start <= 1:
            raise ValueError(f"start: expected 0 < start <= 1, got {start}")
        return round(start * (self.num_train_timesteps - 1)) + 1

    def inference_timesteps(self, steps: int, start: float = 1.0, end: float = 0.0) -> list[tuple[int, int]]:
        """``steps`` pairs ``(t, t_prev)`` from ``T − 1`` (or ``start·(T − 1)``) down to 0 (or ``end·(T − 1)``).

        ``start == 1`` is MONAI's DDIM scheduler order: ``t`` runs over
        ``round(linspace(T − 1, 0, steps))`` and ``t_prev = t − T // steps`` (``t_prev < 0`` means
        the clean end, ᾱ = 1); ``steps == T`` is plain DDPM ancestral order. ``start < 1`` begins at
        ``t₀ = round(start·(T − 1))`` (a truncated chain for a warm start from an initial
        estimate): ``t`` over ``round(linspace(t₀, t_end, steps))``, each ``t_prev`` the next ``t``.
        ``end > 0`` stops the chain early: its last evaluation is at ``t_end = round(end·(T − 1))``
        and its ``t_prev`` is the clean end, so the chain returns the x̂₀ of that level (for priors
        trained on noisy data, whose denoiser is defined above the data's noise level only).
        """
        t0 = self.max_steps(start) - 1
        t_end = round(end * (self.num_train_timesteps - 1))
        if not 0 <= t_end <= t0:
            raise ValueError(f"end: expected 0 <= end <= start ({start}), got {end}")
        if not 1 <= steps <= t0 - t_end + 1:
            raise ValueError(f"steps: expected 1..{t0 - t_end + 1} (start {start}, end {end}), got {steps}")
        ts = torch.linspace(t0, t_end, steps).round().long().tolist()
        if start == 1 and t_end == 0:
            ratio = self.num_train_timesteps // steps
            return [(int(t), int(t) - ratio) for t in ts]
        return [(int(t), int(tp)) for t, tp in zip(ts, ts[1:] + [-1])]


@dataclass(frozen=True)
class VESchedule:
    """Variance-exploding SDE noise levels (Song et al. 2021): geometric from ``sigma_max`` to ``sigma_min``."""

    sigma_min: float = 0.01
    sigma_max: float = 20.0

    def __post_init__(self) -> None:
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"sigma_min / sigma_max: expected 0 < min < max, got {self.sigma_min} / {self.sigma_max}")

    def sigmas(self, steps: int, start: float = 1.0) -> torch.Tensor:
        """``(steps,)`` float64, decreasing geometric noise levels.

        ``start < 1`` begins lower, at ``exp(log σ_min + start·(log σ_max − log σ_min))`` (warm start).
        """
        if steps < 1:
            raise ValueError(f"steps: expected >= 1, got {steps}")
        if not 0 < start <= 1:
            raise ValueError(f"start: expected 0 < start <= 1, got {start}")
        top = math.log(self.sigma_min) + start * (math.log(self.sigma_max) - math.log(self.sigma_min))
        if steps == 1:
            return torch.tensor([math.exp(top)], dtype=torch.float64)
        return torch.exp(torch.linspace(top, math.log(self.sigma_min), steps, dtype=torch.float64))

    def sample_training_sigma(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Training noise levels, log-uniform on ``[sigma_min, sigma_max]``, shape ``(n,)`` float32."""
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        return torch.exp(math.log(self.sigma_min) + u * (math.log(self.sigma_max) - math.log(self.sigma_min))).float()
