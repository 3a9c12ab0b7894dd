"""Contract checks every :class:`~medrecon.physics.linop.LinearOperator` must pass.

Each check draws random inputs from an explicit ``torch.Generator``, applies the operator and
raises ``AssertionError`` with the measured error when the property does not hold. They are used
by medrecon's own tests and are meant for users who write new operators.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .linop import LinearOperator


def random_like_shape(
    shape: Sequence[int], dtype: torch.dtype, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Standard normal tensor of ``shape`` and ``dtype`` (complex: real and imaginary parts each N(0, 1))."""
    if dtype.is_complex:
        real_dtype = torch.empty((), dtype=dtype).real.dtype
        re = torch.randn(tuple(shape), generator=generator, dtype=real_dtype)
        im = torch.randn(tuple(shape), generator=generator, dtype=real_dtype)
        return torch.complex(re, im).to(device)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype).to(device)


def _inner(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Euclidean inner product ``sum(conj(u) * v)`` in float64 / complex128."""
    u = u.to(torch.complex128) if u.is_complex() or v.is_complex() else u.double()
    v = v.to(u.dtype)
    return torch.sum(torch.conj(u) * v) if u.is_complex() else torch.sum(u * v)


def _tol(dtype: torch.dtype) -> float:
    return 1e-4 if dtype in (torch.float32, torch.complex64) else 1e-10


def check_adjoint(
    op: LinearOperator,
    in_shape: Sequence[int],
    dtype: torch.dtype = torch.complex64,
    *,
    out_dtype: torch.dtype | None = None,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Check ``<A x, y> == <x, Aᴴ y>`` for random ``x`` (shape ``in_shape``) and ``y``.

    Returns:
        The relative mismatch ``|<Ax,y> - <x,Aᴴy>| / (||Ax|| ||y||)``.

    Raises:
        AssertionError: if the mismatch exceeds ``rtol`` (default 1e-4 for single precision,
            1e-10 for double).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    x = random_like_shape(in_shape, dtype, g, device)
    ax = op(x)
    y = random_like_shape(ax.shape, out_dtype or ax.dtype, g, device)
    aty = op.adjoint(y)
    if aty.shape != x.shape:
        raise AssertionError(f"adjoint returned shape {tuple(aty.shape)}, expected {tuple(x.shape)}")
    lhs, rhs = _inner(ax, y), _inner(x, aty)
    scale = (torch.linalg.vector_norm(ax.to(torch.complex128)) * torch.linalg.vector_norm(y.to(torch.complex128))).real
    err = float(torch.abs(lhs - rhs) / torch.clamp(scale, min=1e-30))
    tol = _tol(dtype) if rtol is None else rtol
    if not err <= tol:
        raise AssertionError(f"{type(op).__name__}: adjoint mismatch {err:.3e} > {tol:.1e} (<Ax,y>={complex(lhs)}, <x,AHy>={complex(rhs)})")
    return err


def check_linearity(
    op: LinearOperator,
    in_shape: Sequence[int],
    dtype: torch.dtype = torch.complex64,
    *,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Check ``A(a x + b z) == a A x + b A z`` for random ``x, z`` and scalars ``a, b``.

    Returns:
        The relative error ``||A(ax+bz) - (aAx+bAz)|| / ||aAx+bAz||``.
    """
    g = generator if generator is not None else torch.Generator().manual_seed(1)
    x = random_like_shape(in_shape, dtype, g, device)
    z = random_like_shape(in_shape, dtype, g, device)
    a, b = (0.7 - 1.3j, 2.1 + 0.4j) if dtype.is_complex else (0.7, -2.1)
    lhs = op(a * x + b * z)
    rhs = a * op(x) + b * op(z)
    err = float(torch.linalg.vector_norm(lhs - rhs) / torch.clamp(torch.linalg.vector_norm(rhs), min=1e-30))
    tol = 10 * _tol(dtype) if rtol is None else rtol
    if not err <= tol:
        raise AssertionError(f"{type(op).__name__}: linearity error {err:.3e} > {tol:.1e}")
    return err


def check_normal(
    op: LinearOperator,
    in_shape: Sequence[int],
    dtype: torch.dtype = torch.complex64,
    *,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """Check that ``op.normal(x)`` equals ``op.adjoint(op(x))`` (guards overridden ``normal``).

    Returns:
        The relative error between the two.
    """
    g = generator if generator is not None else torch.Generator().manual_seed(2)
    x = random_like_shape(in_shape, dtype, g, device)
    ref = op.adjoint(op(x))
    got = op.normal(x)
    err = float(torch.linalg.vector_norm(got - ref) / torch.clamp(torch.linalg.vector_norm(ref), min=1e-30))
    tol = 10 * _tol(dtype) if rtol is None else rtol
    if not err <= tol:
        raise AssertionError(f"{type(op).__name__}: normal() differs from adjoint(forward()) by {err:.3e} > {tol:.1e}")
    return err


def check_operator(op: LinearOperator, in_shape: Sequence[int], dtype: torch.dtype = torch.complex64, **kwargs) -> dict[str, float]:
    """Run all contract checks; returns ``{"adjoint": err, "linearity": err, "normal": err}``."""
    return {
        "adjoint": check_adjoint(op, in_shape, dtype, **kwargs),
        "linearity": check_linearity(op, in_shape, dtype, **kwargs),
        "normal": check_normal(op, in_shape, dtype, **kwargs),
    }
