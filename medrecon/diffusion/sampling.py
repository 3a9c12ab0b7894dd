"""One sampling loop for every sampler, with data consistency on the denoised estimate.

A sampler lists its network evaluations as :class:`Step` s and turns ``(x, x̂₀)`` into the next
state; :func:`sample` is the only loop: VE view of the state → ``D(x, σ)`` → data consistency →
``sampler.update``. Samplers never own a network.

- :class:`DDPMSampler`: ancestral sampling (Ho et al. 2020, eq. 6–7), strided steps use the
  effective ``β = 1 − ᾱ_t/ᾱ_prev``; with all ``T`` steps it equals MONAI's ``DDPMScheduler``
  (fixed-small variance, no clipping).
- :class:`DDIMSampler`: DDIM (Song, Meng & Ermon 2021, eq. 12 and 16) with ``η``; equals MONAI's
  ``DDIMScheduler`` (no clipping). With data consistency it is the DDS sampler (Chung et al. 2024):
  ε is re-derived from the corrected x̂₀.
- :class:`VEPCSampler`: reverse-diffusion predictor + Langevin corrector on the VE SDE (Song et
  al. 2021, Alg. 2) with signal-to-noise ratio ``snr``; with ``n_corrector = 0`` it is the
  Euler–Maruyama discretisation of the reverse VE SDE (the predictor alone, Song et al. 2021, eq. 6
  with ``g² dt = σ_i² − σ_{i+1}²``).
- :class:`ProbabilityFlowSampler`: the deterministic probability-flow ODE of the VE SDE,
  ``dx/dσ = (x − D(x, σ)) / σ`` (Song et al. 2021, eq. 13; Karras et al. 2022, eq. 1 with
  ``σ(t) = t``), integrated by Heun's method (Karras et al. 2022, Alg. 1) on the geometric σ grid,
  the last step to σ = 0 by Euler.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .consistency import DataConsistency
from .denoiser import Denoiser
from .schedule import VESchedule, VPSchedule


@dataclass(frozen=True)
class Step:
    """One network evaluation. ``sigma``: VE noise level; ``kind``: what :meth:`update` does."""

    sigma: float
    kind: str
    t: int = 0
    t_prev: int = -1
    sigma_next: float = 0.0


def randn_like_image(shape: tuple[int, ...], complex_data: bool, generator: torch.Generator, device) -> torch.Tensor:
    """Standard normal noise per real channel (complex: real and imaginary parts each N(0, 1)).

    Drawn item by item along axis 0 (real then imaginary part of item 0, then item 1, ...), so a
    batch of items gets the numbers that the same items drawn one after another would get.
    """
    if complex_data:
        z = torch.randn((shape[0], 2, *shape[1:]), generator=generator, dtype=torch.float32)
        return torch.complex(z[:, 0], z[:, 1]).to(device)
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)


class _VPSampler:
    """Shared VP bookkeeping: state ``x_t`` on the VP scale, VE view ``x_t / √ᾱ_t``."""

    def __init__(self, schedule: VPSchedule, steps: int, start: float = 1.0, end: float = 0.0) -> None:
        self.schedule = schedule
        self.pairs = schedule.inference_timesteps(steps, start, end)
        self.ab = schedule.alphas_cumprod().double()

    def _abar(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.ab[t])

    def steps(self) -> list[Step]:
        return [Step(sigma=math.sqrt((1 - self._abar(t)) / self._abar(t)), kind="vp", t=t, t_prev=tp) for t, tp in self.pairs]

    def init(self, shape, complex_data, generator, device) -> torch.Tensor:
        return randn_like_image(shape, complex_data, generator, device)

    def init_from(self, x_start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Forward-diffuse an initial estimate to the first step: ``√ᾱ x + √(1−ᾱ) ε``."""
        a = self._abar(self.pairs[0][0])
        z = randn_like_image(tuple(x_start.shape), x_start.is_complex(), generator, x_start.device)
        return math.sqrt(a) * x_start + math.sqrt(1 - a) * z

    def to_ve(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        return x / math.sqrt(self._abar(step.t))

    def final(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return x0


class DDIMSampler(_VPSampler):
    """DDIM with stochasticity ``eta`` (0: deterministic) over ``steps`` network evaluations."""

    def __init__(
        self, schedule: VPSchedule = VPSchedule(), steps: int = 50, eta: float = 0.0, start: float = 1.0, end: float = 0.0
    ) -> None:
        super().__init__(schedule, steps, start, end)
        if eta < 0:
            raise ValueError(f"eta: expected >= 0, got {eta}")
        self.eta = eta

    def update(self, x: torch.Tensor, x0: torch.Tensor, step: Step, generator: torch.Generator) -> torch.Tensor:
        a_t, a_p = self._abar(step.t), self._abar(step.t_prev)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
        std = self.eta * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p))
        out = math.sqrt(a_p) * x0 + math.sqrt(max(1 - a_p - std**2, 0.0)) * eps
        if self.eta > 0:
            out = out + std * randn_like_image(x.shape, x.is_complex(), generator, x.device)
        return out


class DDPMSampler(_VPSampler):
    """Ancestral DDPM sampling; ``steps = T`` is the original 1000-step sampler."""

    def __init__(self, schedule: VPSchedule = VPSchedule(), steps: int | None = None, start: float = 1.0, end: float = 0.0) -> None:
        super().__init__(schedule, steps or schedule.num_train_timesteps, start, end)

    def update(self, x: torch.Tensor, x0: torch.Tensor, step: Step, generator: torch.Generator) -> torch.Tensor:
        a_t, a_p = self._abar(step.t), self._abar(step.t_prev)
        alpha = a_t / a_p
        beta = 1 - alpha
        mean = (math.sqrt(a_p) * beta / (1 - a_t)) * x0 + (math.sqrt(alpha) * (1 - a_p) / (1 - a_t)) * x
        if step.t > 0:
            var = max((1 - a_p) / (1 - a_t) * beta, 1e-20)
            mean = mean + math.sqrt(var) * randn_like_image(x.shape, x.is_complex(), generator, x.device)
        return mean


class _VESampler:
    """Shared VE bookkeeping: the state is ``x₀ + σ n`` itself, on the geometric σ grid of ``schedule``."""

    def __init__(self, schedule: VESchedule, steps: int, start: float) -> None:
        self.schedule = schedule
        self.sigmas = schedule.sigmas(steps, start).tolist()

    def init(self, shape, complex_data, generator, device) -> torch.Tensor:
        return self.sigmas[0] * randn_like_image(shape, complex_data, generator, device)

    def init_from(self, x_start: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Add the first noise level to an initial estimate: ``x + σ₀ z``."""
        return x_start + self.sigmas[0] * randn_like_image(tuple(x_start.shape), x_start.is_complex(), generator, x_start.device)

    def to_ve(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        return x

    def final(self, x: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        return x0


class VEPCSampler(_VESampler):
    """VE predictor–corrector: ``steps`` predictor steps, each preceded by ``n_corrector`` Langevin steps."""

    def __init__(
        self, schedule: VESchedule = VESchedule(), steps: int = 100, n_corrector: int = 1, snr: float = 0.16, start: float = 1.0
    ) -> None:
        if n_corrector < 0 or snr <= 0:
            raise ValueError(f"n_corrector / snr: expected >= 0 / > 0, got {n_corrector} / {snr}")
        super().__init__(schedule, steps, start)
        self.n_corrector, self.snr = n_corrector, snr

    def steps(self) -> list[Step]:
        out = []
        for i, s in enumerate(self.sigmas):
            nxt = self.sigmas[i + 1] if i + 1 < len(self.sigmas) else 0.0
            out += [Step(sigma=s, kind="corrector")] * self.n_corrector
            out.append(Step(sigma=s, kind="predictor", sigma_next=nxt))
        return out

    def update(self, x: torch.Tensor, x0: torch.Tensor, step: Step, generator: torch.Generator) -> torch.Tensor:
        score = (x0 - x) / step.sigma**2
        z = randn_like_image(x.shape, x.is_complex(), generator, x.device)
        if step.kind == "corrector":
            dims = tuple(range(1, x.ndim))
            zn = torch.linalg.vector_norm(z.reshape(x.shape[0], -1), dim=1)
            gn = torch.clamp(torch.linalg.vector_norm(score.reshape(x.shape[0], -1), dim=1), min=1e-12)
            eps = (2 * (self.snr * zn / gn) ** 2).reshape((-1,) + (1,) * len(dims))
            return x + eps * score + torch.sqrt(2 * eps) * z
        d = step.sigma**2 - step.sigma_next**2
        out = x + d * score
        return out + math.sqrt(d) * z if step.sigma_next > 0 else out


class ProbabilityFlowSampler(_VESampler):
    """Heun integration of the VE probability-flow ODE over ``steps`` noise levels (``2·steps − 1`` network evaluations).

    Steps alternate ``ode`` (an Euler step from ``σ_i`` to ``σ_{i+1}``, whose slope is kept) and
    ``ode_correct`` (the slope at the Euler point; the step from ``σ_i`` is redone with the mean
    of the two slopes). The state of the step in progress lives in the sampler, so one instance
    serves one :func:`sample` call at a time.
    """

    def __init__(self, schedule: VESchedule = VESchedule(), steps: int = 50, start: float = 1.0) -> None:
        super().__init__(schedule, steps, start)
        self._pending: tuple[torch.Tensor, torch.Tensor, float] | None = None  # (x_i, slope_i, σ_i)

    def steps(self) -> list[Step]:
        out = []
        for i, s in enumerate(self.sigmas):
            nxt = self.sigmas[i + 1] if i + 1 < len(self.sigmas) else 0.0
            out.append(Step(sigma=s, kind="ode", sigma_next=nxt))
            if nxt > 0:
                out.append(Step(sigma=nxt, kind="ode_correct", sigma_next=nxt))
        return out

    def update(self, x: torch.Tensor, x0: torch.Tensor, step: Step, generator: torch.Generator) -> torch.Tensor:
        slope = (x - x0) / step.sigma
        if step.kind == "ode":
            if step.sigma_next > 0:
                self._pending = (x, slope, step.sigma)
            return x + (step.sigma_next - step.sigma) * slope
        x_i, slope_i, sigma_i = self._pending
        self._pending = None
        return x_i + (step.sigma_next - sigma_i) * 0.5 * (slope_i + slope)


Sampler = DDPMSampler | DDIMSampler | VEPCSampler | ProbabilityFlowSampler


def sample(
    denoiser: Denoiser,
    shape: tuple[int, int, int],
    sampler: Sampler,
    generator: torch.Generator,
    dc: DataConsistency | None = None,
    cond: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
    x_start: torch.Tensor | None = None,
    x_init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw ``shape[0]`` samples ``(B, H, W)`` from the prior, conditioned on data through ``dc``.

    Args:
        denoiser: the prior ``D(x, σ, cond)``.
        shape: ``(B, H, W)`` (``(B, D, H, W)`` for a 3-D prior); B independent samples (e.g. B posterior samples of one slice).
        sampler: :class:`DDPMSampler`, :class:`DDIMSampler`, :class:`VEPCSampler` or :class:`ProbabilityFlowSampler`.
        generator: explicit RNG; the result is reproducible given it.
        dc: data consistency on x̂₀ (``None``: unconditional).
        cond: conditioning channels ``(B, Cc, H, W)`` for conditional priors.
        callback: called as ``callback(i, n, x0)`` after each network evaluation.
        x_start: ``(B, H, W)`` initial estimate (on the data scale of the prior) for a warm start:
            it is diffused to the sampler's first noise level instead of starting from pure noise
            (Chung, Sim & Ye 2022, "Come-Closer-Diffuse-Faster"); meant for samplers built with
            ``start < 1``.
        x_init: the initial state itself ``shape`` (as ``sampler.init`` draws it: noise at the first
            level), e.g. one draw shared by the slices of a volume; not together with ``x_start``.

    Returns:
        The final clean estimate ``(B, H, W)`` (complex for complex priors).
    """
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise ValueError(f"shape: expected (B, H, W) or, for 3-D priors, (B, D, H, W) with positive sizes, got {shape}")
    steps = sampler.steps()
    if x_init is not None:
        if x_start is not None or tuple(x_init.shape) != tuple(shape):
            raise ValueError(f"x_init: expected shape {tuple(shape)} and no x_start, got {tuple(x_init.shape)}")
        x = x_init.to(device)
    elif x_start is None:
        x = sampler.init(tuple(shape), denoiser.complex_data, generator, device)
    else:
        if tuple(x_start.shape) != tuple(shape) or x_start.is_complex() != denoiser.complex_data:
            raise ValueError(
                f"x_start: expected shape {tuple(shape)} ({'complex' if denoiser.complex_data else 'real'}), "
                f"got {tuple(x_start.shape)} {x_start.dtype}"
            )
        x = sampler.init_from(x_start.to(device), generator)
    x0 = x
    with torch.no_grad():
        for i, st in enumerate(steps):
            x0 = denoiser(sampler.to_ve(x, st), torch.full((shape[0],), st.sigma, device=x.device), cond)
            if dc is not None:
                x0 = dc(x0, st.sigma)
            x = sampler.update(x, x0, st, generator)
            if callback is not None:
                callback(i + 1, len(steps), x0)
    return sampler.final(x, x0)
