"""Data consistency applied to the denoised estimate x̂₀ inside the sampler: one signature for all.

``dc(x0_hat, sigma) -> x0`` where ``x0_hat`` is ``(B, H, W)`` on the prior's (normalised) scale
and the measurements ``y`` were scaled the same way by the caller.
"""

from __future__ import annotations

import torch

from ..physics.fft import fftc, ifftc
from ..physics.linop import LinearOperator
from ..solvers.cg import conjugate_gradient
from ..solvers.power import operator_norm


class DataConsistency(torch.nn.Module):
    """Base class and the identity (no data consistency: unconditional sampling)."""

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        return x0


class HardProjection(DataConsistency):
    """Replace the sampled k-space locations of x̂₀ by the measurements (single-coil Cartesian).

    ``x ← Fᴴ((1 − M) F x̂₀ + M y)``: the exact projection onto ``{x : M F x = y}`` for noiseless
    single-coil Cartesian data (Song et al. 2022, "Solving inverse problems in medical imaging").

    Args:
        mask: real 0/1, broadcastable to ``(B, H, W)``.
        y: measured k-space ``(B, H, W)`` complex (zeros where not sampled).
    """

    def __init__(self, mask: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        if not y.is_complex() or y.ndim != 3:
            raise ValueError(f"y: expected single-coil complex k-space (B, H, W), got {y.dtype} {tuple(y.shape)}")
        m = mask.to(torch.float32)
        if m.max() > 1 or m.min() < 0 or not torch.all((m == 0) | (m == 1)):
            raise ValueError("mask: hard projection needs a binary 0/1 mask")
        self.register_buffer("mask", m)
        self.register_buffer("y", y)

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        k = fftc(x0)
        return ifftc(k * (1 - self.mask) + self.y * self.mask)


class ProximalCG(DataConsistency):
    """A few CG iterations on the normal equations, warm-started at x̂₀ (DDS, Chung et al. 2024).

    Solves ``(AᴴA + λI) x = Aᴴy + λ x̂₀`` approximately with ``n_iter`` iterations of the shared
    complex-correct CG from ``x̂₀`` (``λ = 0``: DDS's Krylov-subspace step).
    """

    def __init__(self, op: LinearOperator, y: torch.Tensor, n_iter: int = 5, lam: float = 0.0) -> None:
        super().__init__()
        if n_iter < 1:
            raise ValueError(f"n_iter: expected >= 1, got {n_iter}")
        if lam < 0:
            raise ValueError(f"lam: expected >= 0, got {lam}")
        self.op, self.n_iter, self.lam = op, n_iter, lam
        self.register_buffer("aty", op.adjoint(y))

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        rhs = self.aty + self.lam * x0 if self.lam else self.aty
        return conjugate_gradient(self.op.normal, rhs, x0=x0, max_iter=self.n_iter, damping=self.lam)


class GradientGuidance(DataConsistency):
    """Gradient steps on ``½||A x − y||²`` taken on x̂₀ (DPS-style guidance, Chung et al. 2023).

    Unlike DPS proper, the gradient is not back-propagated through the network (that costs a
    backward pass per step); ``x ← x − (step / L) Aᴴ(A x − y)`` with ``L = ||A||²``.
    """

    def __init__(self, op: LinearOperator, y: torch.Tensor, step: float = 1.0, n_steps: int = 1) -> None:
        super().__init__()
        if not 0 < step < 2:
            raise ValueError(f"step: expected 0 < step < 2 (relative to 1/||A||²), got {step}")
        if n_steps < 1:
            raise ValueError(f"n_steps: expected >= 1, got {n_steps}")
        self.op, self.y, self.step, self.n_steps = op, y, step, n_steps
        self.lipschitz = operator_norm(op, op.adjoint(y)) ** 2

    def forward(self, x0: torch.Tensor, sigma: float) -> torch.Tensor:
        x = x0
        for _ in range(self.n_steps):
            x = x - (self.step / self.lipschitz) * self.op.adjoint(self.op(x) - self.y)
        return x



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
