"""Conjugate gradient for Hermitian positive (semi-)definite systems, complex-correct.

This is the one CG in medrecon: CG-SENSE, the proximal data-consistency steps of the diffusion
samplers and the CT solvers all call it. Inner products are ``<r, r> = Σ conj(r)·r`` (a frequent
bug in research code is ``rᵀr``, which is wrong for complex data).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _batched_dot(a: torch.Tensor, b: torch.Tensor, joint: bool = False) -> torch.Tensor:
    """``Σ conj(a)·b`` over all but the leading (batch) axis (over everything when ``joint``), real
    part; shape ``(B, 1, ..., 1)`` (``(1, …, 1)`` when ``joint``)."""
    prod = torch.conj(a) * b if a.is_complex() else a * b
    s = prod.reshape(1 if joint else prod.shape[0], -1).sum(dim=1).real
    return s.reshape((-1,) + (1,) * (a.ndim - 1))


def conjugate_gradient(
    normal: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    x0: torch.Tensor | None = None,
    iters: int = 10,
    tol: float = 0.0,
    damping: float = 0.0,
    joint: bool = False,
) -> torch.Tensor:
    """Solve ``(N + damping·I) x = rhs`` by CG, independently for each item of the leading batch axis
    (or, with ``joint``, as one system: for a ``normal`` that couples the items).

    Args:
        normal: the Hermitian positive semi-definite map ``N`` (e.g. ``A.normal``), batch-wise.
        rhs: right-hand side ``(B, ...)``, real or complex.
        x0: initial guess (zeros when ``None``).
        iters: number of CG iterations (>= 0).
        tol: stop when every item's residual norm is below ``tol · ||rhs||``.
        damping: Tikhonov weight ``λ >= 0`` added to the diagonal.
        joint: one system over the whole batch (inner products over all items).

    Returns:
        The solution, same shape and dtype as ``rhs``. Differentiable (no in-place updates).
    """
    if iters < 0:
        raise ValueError(f"iters: expected >= 0, got {iters}")
    if damping < 0:
        raise ValueError(f"damping: expected >= 0, got {damping}")

    def op(v: torch.Tensor) -> torch.Tensor:
        out = normal(v)
        return out + damping * v if damping else out

    x = torch.zeros_like(rhs) if x0 is None else x0
    r = rhs - op(x) if x0 is not None else rhs
    p = r
    rr = _batched_dot(r, r, joint)
    stop = (tol * tol) * _batched_dot(rhs, rhs, joint)
    for _ in range(iters):
        if tol > 0 and bool(torch.all(rr <= stop)):
            break
        ap = op(p)
        pap = _batched_dot(p, ap, joint)
        alpha = torch.where(pap > 0, rr / torch.where(pap > 0, pap, torch.ones_like(pap)), torch.zeros_like(pap))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _batched_dot(r, r, joint)
        beta = torch.where(rr > 0, rr_new / torch.where(rr > 0, rr, torch.ones_like(rr)), torch.zeros_like(rr))
        p = r + beta * p
        rr = rr_new
    return x
