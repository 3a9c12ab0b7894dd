"""Posterior sampling that knows no modality: prior + forward operator + measurements → mean, std, samples.

A task builds its forward operator on the prior's scale (or none, for translation and denoising),
its measurements, an optional condition image, warm start and support; :func:`sample_posterior`
does the rest, for ``S`` items (slices, patches) at once:

1. repeats every item ``samples`` times (item-major, so all ``S × N`` chains run as one batch
   through the network and the data consistency; the operator sees each copy through
   :class:`~medrecon.physics.linop.RepeatItems`);
2. builds the data consistency named by ``settings.dc`` — proximal CG on the normal equations
   (``cg``, DDS, Chung et al. 2024), gradient steps (``grad``, DPS-style), exact projection
   (``hard``, for operators with ``A Aᴴ`` a projection), ``none``, or a step the task supplies
   (``likelihood``, e.g. a Poisson-likelihood step);
3. restricts every estimate to the support (pixels outside keep zero or the warm start);
4. runs the one :func:`~medrecon.diffusion.sampling.sample` loop, from noise or from the warm
   start diffused to ``settings.start`` (Chung, Sim & Ye 2022, "Come-Closer-Diffuse-Faster");
5. applies a final data-consistency step (``cg``, ``likelihood``), then returns per-item mean and
   per-pixel std of the magnitude.

Everything on the prior's scale: the task divides its measurements and warm start by its data
scale first and multiplies the result back (the MRI recipe in :mod:`medrecon.tasks.mri.diffusion`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..config import Settings
from ..errors import ArgumentError
from ..physics.gradient import SliceDifference
from ..physics.linop import LinearOperator, RepeatItems
from .consistency import DataConsistency, GradientGuidance, HardProjection, ProximalCG, SliceCoupling, SupportRestricted
from .denoiser import Denoiser, check_trained_timesteps
from .sampling import DDIMSampler, DDPMSampler, ProbabilityFlowSampler, Sampler, VEPCSampler, sample
from .schedule import VESchedule

SAMPLERS = ("dds", "ddim", "ddpm", "ve_pc", "ve_em", "ve_ode")
VE_SAMPLERS = ("ve_pc", "ve_em", "ve_ode")
DCS = ("cg", "grad", "hard", "none", "likelihood")


class PosteriorSettings(Settings):
    """How posterior samples are drawn (the part of every diffusion recipe that knows no modality).

    Attributes:
        sampler: ``dds`` (DDIM(η) with proximal CG, Chung et al. 2024), ``ddim``, ``ddpm``
            (ancestral) on DDPM priors; on score priors and on DDPM priors (over their noise
            levels, :meth:`~medrecon.diffusion.schedule.VPSchedule.ve_span`) ``ve_pc`` (VE
            predictor–corrector), ``ve_em`` (Euler–Maruyama on the reverse VE SDE) or ``ve_ode``
            (the deterministic probability-flow ODE, Heun).
        steps: network evaluations per sample; for ``ve_pc`` predictor steps (each with one
            corrector: 2 evaluations), for ``ve_ode`` noise levels (``2·steps − 1`` evaluations).
        eta: DDIM stochasticity (``dds`` / ``ddim``).
        dc: data consistency on x̂₀: ``cg``, ``grad``, ``hard``, ``none`` or ``likelihood`` (a step
            the task supplies); ``dds`` always uses ``cg``.
        dc_iters: iterations of the data-consistency step (CG iterations for ``cg``, gradient
            steps for ``grad``).
        dc_lam: proximal weight λ of the CG step, ``argmin ||A x − y||² + λ||x − x̂₀||²`` on the
            prior's scale (0: DDS's plain Krylov step from x̂₀; > 0 trusts the denoiser more).
        samples: posterior samples per item (mean and std are returned).
        seed: seed of the sampler's RNG.
        start: fraction of the noise schedule the chain starts from. 1: pure noise; < 1: a warm
            start from the task's estimate, diffused to that level; the samples then share the
            estimate and their std shows the spread of the last part of the chain only.
        end: fraction of the noise schedule where the chain stops and returns its x̂₀ (0: the
            clean end; > 0 for priors trained on noisy data, :class:`~medrecon.diffusion.noisy_data.NoisyDataDenoiser`;
            DDPM priors only).
    """

    sampler: Literal["dds", "ddim", "ddpm", "ve_pc", "ve_em", "ve_ode"] = "dds"
    steps: int = Field(50, ge=1)
    eta: float = Field(0.85, ge=0)
    dc: Literal["cg", "grad", "hard", "none", "likelihood"] = "cg"
    dc_iters: int = Field(5, ge=1)
    dc_lam: float = Field(0.0, ge=0)
    samples: int = Field(1, ge=1)
    seed: int = 0
    start: float = Field(1.0, gt=0, le=1)
    end: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _end_below_start(self) -> PosteriorSettings:
        if self.end >= self.start:
            raise ValueError(f"end: expected below start ({self.start}), got {self.end}")
        return self

    @model_validator(mode="after")
    def _dds_uses_cg(self) -> PosteriorSettings:
        if self.sampler == "dds" and self.dc != "cg":
            raise ValueError(f"dc: expected 'cg' with sampler 'dds' (DDIM with proximal CG), got {self.dc!r}")
        return self


@dataclass(frozen=True)
class Posterior:
    """Result of :func:`sample_posterior` on the prior's scale.

    Attributes:
        mean: ``(S, *image)`` posterior mean (complex for complex priors).
        std: ``(S, *image)`` real per-pixel standard deviation of the magnitude over the samples.
        samples: ``(S, N, *image)`` the samples themselves.
    """

    mean: torch.Tensor
    std: torch.Tensor
    samples: torch.Tensor


def make_sampler(denoiser: Denoiser, settings: PosteriorSettings) -> Sampler:
    """The sampler ``settings`` name, on the prior's schedule.

    Raises:
        ArgumentError: a sampler that does not fit the prior (``dds`` / ``ddim`` / ``ddpm`` need
            a DDPM prior), an early end for a VE sampler, or more steps than the (truncated)
            schedule has.
    """
    ve = isinstance(getattr(denoiser, "schedule", None), VESchedule)
    if settings.sampler not in VE_SAMPLERS and ve:
        raise ArgumentError(f"sampler {settings.sampler!r} needs a DDPM prior; this prior is a score (VE) one: use ve_pc / ve_em / ve_ode")
    if settings.end > 0 and settings.sampler in VE_SAMPLERS:
        raise ArgumentError(f"end {settings.end}: an early end of the chain needs a DDPM sampler (ddim / ddpm), got {settings.sampler!r}")
    if settings.sampler in ("dds", "ddim"):
        return DDIMSampler(denoiser.schedule, settings.steps, settings.eta, start=settings.start, end=settings.end)
    if settings.sampler == "ddpm":
        return DDPMSampler(denoiser.schedule, settings.steps, start=settings.start, end=settings.end)
    schedule = denoiser.schedule if ve else denoiser.schedule.ve_span()
    if settings.sampler == "ve_ode":
        return ProbabilityFlowSampler(schedule, settings.steps, start=settings.start)
    return VEPCSampler(schedule, settings.steps, n_corrector=int(settings.sampler == "ve_pc"), start=settings.start)


def repeat_items(t: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """``(S, …)`` → ``(S·n, …)``, each item ``n`` times in a row (the engine's batch layout)."""
    return t if t is None or n == 1 else t.repeat_interleave(n, dim=0)


def make_consistency(
    settings: PosteriorSettings,
    operator: LinearOperator | None,
    y: torch.Tensor | None,
    likelihood: DataConsistency | None = None,
    item_coupling: float = 0.0,
    coupling_target: torch.Tensor | None = None,
) -> DataConsistency | None:
    """The data consistency ``settings.dc`` names, for an operator and measurements already on the batch of ``S·N``.

    ``item_coupling > 0`` adds ``β Σ ||x_{s+1} − x_s||²`` over neighbouring items of each sample to
    the CG step (:class:`~medrecon.physics.gradient.SliceDifference`), which then solves one
    system for the whole batch; with ``dc = "none"`` that penalty alone is the step
    (:class:`~medrecon.diffusion.consistency.SliceCoupling`, ``dc_iters`` CG iterations).
    ``coupling_target`` ``(S·N, *image)``, zero but for its first ``N`` rows (each sample's item
    before the first, held fixed), anchors the first item too: ``β ||x_0 − anchor||²``.
    """
    coupling = SliceDifference(settings.samples, anchored=coupling_target is not None) if item_coupling > 0 else None
    target = coupling_target if coupling is not None else None
    if settings.dc == "none":  # no measurements: items may still be coupled to their neighbours
        return SliceCoupling(coupling, item_coupling, settings.dc_iters, target=target) if coupling is not None else None
    if settings.dc == "likelihood":
        if likelihood is None:
            raise ArgumentError("dc 'likelihood': this task supplies no likelihood step; use cg, grad, hard or none")
        return likelihood
    if operator is None or y is None:
        raise ArgumentError(f"dc {settings.dc!r}: needs a forward operator and measurements; this task has none (use dc 'none')")
    if settings.dc == "cg":
        return ProximalCG(
            operator,
            y,
            iters=settings.dc_iters,
            lam=settings.dc_lam,
            coupling=coupling,
            coupling_weight=item_coupling,
            coupling_target=target,
        )
    if item_coupling > 0:
        raise ArgumentError(f"dc {settings.dc!r}: coupling neighbouring items needs the CG step (dc 'cg')")
    if settings.dc == "grad":
        return GradientGuidance(operator, y, iters=settings.dc_iters)
    return HardProjection(operator, y)


def sample_posterior(
    denoiser: Denoiser,
    settings: PosteriorSettings,
    shape: tuple[int, ...],
    generator: torch.Generator,
    *,
    operator: LinearOperator | None = None,
    y: torch.Tensor | None = None,
    likelihood: DataConsistency | None = None,
    cond: torch.Tensor | None = None,
    x_start: torch.Tensor | None = None,
    support: torch.Tensor | None = None,
    item_coupling: float = 0.0,
    item_anchor: torch.Tensor | None = None,
    shared_noise: bool = False,
    device: str | torch.device = "cpu",
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> Posterior:
    """Draw ``settings.samples`` posterior samples of each of ``S`` items and summarise them.

    Args:
        denoiser: the prior ``D(x, σ, cond)``.
        settings: sampler, steps, data consistency, samples, warm-start level.
        shape: ``(S, *image)``, e.g. ``(S, H, W)`` slices.
        generator: the sampler's RNG (the result is reproducible given it).
        operator: forward model on the prior's scale acting on ``(S, *image)``; ``None`` for tasks
            without one (translation, image-domain denoising).
        y: measurements ``operator(x)`` ``(S, …)`` on the prior's scale.
        likelihood: the task's own data-consistency step for ``dc = "likelihood"``, acting on the
            batch of ``S·N`` (item-major: :func:`repeat_items`).
        cond: condition images ``(S, Cc, *image)`` for conditional priors.
        x_start: ``(S, *image)`` warm-start estimate on the prior's scale (used when ``start < 1``).
        support: ``(S, *image)`` 0/1; pixels outside stay zero (or keep ``x_start``) — the data do
            not constrain them, and the prior alone would paint anatomy there.
        item_coupling: weight β of a penalty on differences between neighbouring items (the
            slices of a volume, in order) inside the CG step (or alone, with ``dc = "none"``); 0: items
            independent.
        item_anchor: ``(N, *image)`` each sample's item just before item 0 (the last item of the
            previous batch of the same volume, on the prior's scale), held fixed and coupled to
            item 0 by the same weight: consecutive batches then join without a step. Only with
            ``item_coupling > 0``.
        shared_noise: sample ``j`` of every item starts from the same noise draw (with a
            deterministic sampler, neighbouring slices of smoothly varying conditions then give
            smoothly varying results); only when sampling from noise (``start = 1``).
        device: where the chains run.
        callback: ``callback(i, n, x0)`` after each network evaluation.

    Returns:
        :class:`Posterior` with ``mean``, ``std`` ``(S, *image)`` and ``samples`` ``(S, N, *image)``.
    """
    n, s_count = settings.samples, shape[0]
    sampler = make_sampler(denoiser, settings)
    band = (getattr(denoiser, "info", {}).get("train_config") or {}).get("timestep_range")
    if band is not None:  # a DDPM prior trained on part of its schedule: the timesteps the chain visits
        if hasattr(sampler, "pairs"):
            visited = torch.tensor([float(t) for t, _ in sampler.pairs])
        else:
            visited = denoiser.schedule.timestep_of_sigma(torch.tensor(sampler.sigmas))
        try:
            check_trained_timesteps(visited, tuple(band), denoiser.schedule)
        except ArgumentError as err:
            raise ArgumentError(f"start / end ({settings.start:.3g} / {settings.end:.3g}): {err}") from None
    if settings.start < 1 and x_start is None:
        raise ArgumentError(f"start {settings.start}: a warm start needs an initial estimate (x_start); use start 1 to sample from noise")
    op = None if operator is None else RepeatItems(operator, n)
    target = None
    if item_anchor is not None and item_coupling > 0:
        if tuple(item_anchor.shape) != (n, *shape[1:]):
            raise ValueError(f"item_anchor: expected shape {(n, *shape[1:])} (one per sample), got {tuple(item_anchor.shape)}")
        target = torch.cat((item_anchor, item_anchor.new_zeros(((s_count - 1) * n, *shape[1:])))).to(device)
    dc = make_consistency(settings, op, repeat_items(y, n), likelihood, item_coupling, target)
    fill = repeat_items(x_start, n) if settings.start < 1 else None
    if dc is not None and support is not None:
        dc = SupportRestricted(dc, repeat_items(support, n), fill=fill)
    x_init = None
    if shared_noise and settings.start == 1:
        x_init = sampler.init((n, *shape[1:]), denoiser.complex_data, generator, device).repeat(s_count, *([1] * (len(shape) - 1)))
    x = sample(
        denoiser,
        (s_count * n, *shape[1:]),
        sampler,
        generator,
        dc=dc,
        cond=repeat_items(cond, n),
        device=device,
        callback=callback,
        x_start=fill,
        x_init=x_init,
    )
    if dc is not None and settings.dc in ("cg", "likelihood"):
        x = dc(x, 0.0)  # final data-consistency step on the returned estimate
    elif isinstance(dc, SupportRestricted):
        x = dc.restrict(x)
    xs = x.reshape(s_count, n, *shape[1:])
    return Posterior(mean=xs.mean(dim=1), std=xs.abs().std(dim=1, unbiased=n > 1), samples=xs)
