"""Data consistency applied to the denoised estimate x̂₀ inside the sampler: one signature for all.

``dc(x0_hat, sigma) -> x0`` where ``x0_hat`` is ``(B, H, W)`` on the prior's (normalised) scale
and the measurements ``y`` were scaled the same way by the caller.
"""

from __future__ import annotations

import torch

from ..physics.linop import LinearOperator
from ..solvers.cg import conjugate_gradient
from ..solvers.power import operator_norm


class DataConsistency(torch.nn.Module):
    """Base class and the identity (no data consistency: unconditional sampling)."""

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        return x0


class HardProjection(DataConsistency):
    """Exact projection of x̂₀ onto the measurements ``{x : A x = y}``: ``x ← x − Aᴴ(A x − y)``.

    Exact when ``A Aᴴ`` is itself a projection (``A`` a partial isometry), e.g. a binary Cartesian
    mask after a unitary FFT (single-coil MRI): there it replaces the sampled k-space of x̂₀ by the
    measurements, ``x ← Fᴴ((1 − M) F x̂₀ + M y)`` (Song et al. 2022, "Solving inverse problems in
    medical imaging with score-based generative models"). Checked at construction on a random probe.

    Args:
        op: ``A`` with ``A Aᴴ`` idempotent.
        y: measurements ``A x`` (on the prior's scale).
        generator: RNG of the probe (default: seed 0).
    """

    def __init__(self, op: LinearOperator, y: torch.Tensor, generator: torch.Generator | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0) if generator is None else generator
        v = torch.randn(y.shape, generator=g, dtype=y.real.dtype)
        v = (torch.complex(v, torch.randn(y.shape, generator=g, dtype=y.real.dtype)) if y.is_complex() else v).to(y.device)
        pv = op(op.adjoint(v))
        err = float(torch.linalg.vector_norm(op(op.adjoint(pv)) - pv) / torch.linalg.vector_norm(pv).clamp(min=1e-30))
        if err > 1e-3:
            raise ValueError(
                f"op: hard projection needs A Aᴴ to be a projection (a binary mask, unit maps), got ||P² − P|| / ||P|| = {err:.2e}"
            )
        self.op = op
        self.register_buffer("y", y)

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        return x0 - self.op.adjoint(self.op(x0) - self.y)


class ProximalCG(DataConsistency):
    """A few CG iterations on the normal equations, warm-started at x̂₀ (DDS, Chung et al. 2024).

    Solves ``(AᴴA + λI + β RᴴR) x = Aᴴy + λ x̂₀`` approximately with ``iters`` iterations of the
    shared complex-correct CG from ``x̂₀`` (``λ = 0``: DDS's Krylov-subspace step). The optional
    quadratic penalty ``β ||R x − r||²`` couples items, e.g. ``R`` the slice-to-slice difference of a
    volume's slices sampled together (a quadratic stand-in for DiffusionMBIR's TV along z, which
    keeps the step a linear solve) and ``r`` the fixed neighbour of the first slice
    (``coupling_target``, ``None``: zero); the right-hand side gains ``β Rᴴ r``.
    """

    def __init__(
        self,
        op: LinearOperator,
        y: torch.Tensor,
        iters: int = 5,
        lam: float = 0.0,
        coupling: LinearOperator | None = None,
        coupling_weight: float = 0.0,
        coupling_target: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if iters < 1:
            raise ValueError(f"iters: expected >= 1, got {iters}")
        if lam < 0 or coupling_weight < 0:
            raise ValueError(f"lam / coupling_weight: expected >= 0, got {lam} / {coupling_weight}")
        self.op, self.iters, self.lam = op, iters, lam
        self.coupling, self.beta = (coupling, coupling_weight) if coupling is not None and coupling_weight > 0 else (None, 0.0)
        aty = op.adjoint(y)
        if self.coupling is not None and coupling_target is not None:
            aty = aty + self.beta * self.coupling.adjoint(coupling_target)
        self.register_buffer("aty", aty)

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        out = self.op.normal(x)
        return out if self.coupling is None else out + self.beta * self.coupling.normal(x)

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        rhs = self.aty + self.lam * x0 if self.lam else self.aty
        return conjugate_gradient(self._normal, rhs, x0=x0, iters=self.iters, damping=self.lam, joint=self.coupling is not None)


class SliceCoupling(DataConsistency):
    """Coupling of neighbouring items without measurements: ``argmin ||x − x̂₀||² + β ||R x − r||²``.

    For tasks with no forward operator (translation): the slices of a volume, sampled together,
    are pulled towards their neighbours at every step (``R`` the slice difference,
    :class:`~medrecon.physics.gradient.SliceDifference`; ``r`` the fixed neighbour of the first
    slice, ``target``, or zero), a quadratic stand-in for DiffusionMBIR's z-TV.
    ``(I + β RᴴR) x = x̂₀ + β Rᴴ r`` is solved by ``iters`` CG iterations from x̂₀ over the whole
    batch (its condition number is at most ``1 + 4β``).
    """

    def __init__(self, coupling: LinearOperator, weight: float, iters: int = 10, target: torch.Tensor | None = None) -> None:
        super().__init__()
        if not weight > 0 or iters < 1:
            raise ValueError(f"weight / iters: expected > 0 / >= 1, got {weight} / {iters}")
        self.coupling, self.beta, self.iters = coupling, weight, iters
        self.register_buffer("pull", None if target is None else weight * coupling.adjoint(target))

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        rhs = x0 if self.pull is None else x0 + self.pull
        return conjugate_gradient(lambda v: self.beta * self.coupling.normal(v), rhs, x0=x0, iters=self.iters, damping=1.0, joint=True)


class GradientGuidance(DataConsistency):
    """Gradient steps on ``½||A x − y||²`` taken on x̂₀ (DPS-style guidance, Chung et al. 2023).

    Unlike DPS proper, the gradient is not back-propagated through the network (that costs a
    backward pass per step); ``x ← x − (step / L) Aᴴ(A x − y)`` with ``L = ||A||²``.
    """

    def __init__(self, op: LinearOperator, y: torch.Tensor, step: float = 1.0, iters: int = 1) -> None:
        super().__init__()
        if not 0 < step < 2:
            raise ValueError(f"step: expected 0 < step < 2 (relative to 1/||A||²), got {step}")
        if iters < 1:
            raise ValueError(f"iters: expected >= 1, got {iters}")
        self.op, self.y, self.step, self.iters = op, y, step, iters
        self.lipschitz = operator_norm(op, op.adjoint(y)) ** 2

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        x = x0
        for _ in range(self.iters):
            x = x - (self.step / self.lipschitz) * self.op.adjoint(self.op(x) - self.y)
        return x


class PoissonProximalEM(DataConsistency):
    """Proximal EM steps on the Poisson log-likelihood of counts ``y ~ Poisson(A x + r)``, from x̂₀.

    Each of ``iters`` steps maximises De Pierro's separable EM surrogate of the log-likelihood
    minus ``(λ_j / 2)(x_j − z_j)²`` around ``z = x̂₀`` (clamped at 0), in closed form per pixel:
    with ``s = Aᵀ1``, the EM image ``x_EM = x / s · Aᵀ(y / (A x + r))`` and ``λ_j = ρ s_j / m``
    (``m``: the mean of ``z``; the likelihood's curvature at the mean activity),
    ``x = (−b + sqrt(b² + 4 (ρ/m) x_EM)) / (2ρ/m)``, ``b = 1 − ρ z / m``. ``ρ → 0`` is plain EM,
    ``ρ → ∞`` returns x̂₀. The data live on their own (count) scale: ``x = scale · x̂₀``.

    Args:
        op: ``A`` on the batch ``(B, H, W) → (B, V, D)``, non-negative.
        y: counts ``(B, V, D)``; background: ``r`` ``(B, V, D)`` ≥ 0.
        scale: ``(B,)`` count-scale units per unit of the prior's scale.
        lam: ``ρ`` ≥ 0; iters: EM steps per call.
    """

    def __init__(
        self, op: LinearOperator, y: torch.Tensor, background: torch.Tensor, scale: torch.Tensor, lam: float, iters: int = 2
    ) -> None:
        super().__init__()
        if lam < 0 or iters < 1:
            raise ValueError(f"lam / iters: expected >= 0 / >= 1, got {lam} / {iters}")
        self.op, self.lam, self.iters = op, lam, iters
        self.register_buffer("y", y)
        self.register_buffer("background", background)
        self.register_buffer("scale", scale.reshape(-1, *([1] * (y.ndim - 1))))
        sens = op.adjoint(torch.ones_like(y))
        self.register_buffer("sens", sens)
        self.register_buffer("seen", (sens > 1e-6 * sens.amax(dim=tuple(range(1, sens.ndim)), keepdim=True)).to(sens.dtype))

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        z = (x0 * self.scale).clamp(min=0) * self.seen
        dims = tuple(range(1, z.ndim))
        m = z.mean(dim=dims, keepdim=True).clamp(min=1e-12)
        x = torch.maximum(z, 1e-3 * m) * self.seen  # EM cannot move a pixel away from 0
        for _ in range(self.iters):
            x_em = x / self.sens.clamp(min=1e-12) * self.op.adjoint(self.y / (self.op(x) + self.background).clamp(min=1e-12))
            if self.lam == 0:
                x = x_em
            else:
                a = self.lam / m
                b = 1 - a * z
                root = torch.sqrt(b * b + 4 * a * x_em)
                # the positive root of a x² + b x − x_EM = 0, in the form without cancellation
                x = torch.where(b > 0, 2 * x_em / (b + root).clamp(min=1e-30), (root - b) / (2 * a))
            x = x * self.seen
        return x / self.scale


class SupportRestricted(DataConsistency):
    """Another data consistency, then the unobserved pixels set to a fixed estimate (zero by default).

    Pixels where every coil map is zero (ESPIRiT crops maps outside the object) are unobserved:
    no data-consistency step touches them, so the prior alone fills them — with anatomy it
    hallucinates there (seen with the shipped brain prior: brain-like texture in the corners of
    an 8x demo slice, and a 5.7 dB seed-to-seed spread at 4x on a real head). CG-SENSE leaves
    them at zero; this makes the diffusion estimate do the same, or keep a warm start's initial
    estimate there (``fill``), so the sampler only changes what the data constrain.

    Args:
        inner: the data consistency applied first.
        support: real 0/1, broadcastable to the image batch ``(B, H, W)``.
        fill: ``(B, H, W)`` values outside the support (``None``: zero).
    """

    def __init__(self, inner: DataConsistency, support: torch.Tensor, fill: torch.Tensor | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("support", support.to(torch.float32))
        self.register_buffer("outside", None if fill is None else fill * (1 - self.support))

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        return self.restrict(self.inner(x0, sigma))

    def restrict(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with its unobserved pixels replaced (no data consistency)."""
        x = x * self.support
        return x if self.outside is None else x + self.outside
