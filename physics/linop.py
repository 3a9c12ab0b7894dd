"""The linear-operator core every physics model in medrecon implements.

A :class:`LinearOperator` is a ``torch.nn.Module`` whose parameters (masks, coil maps, angles) are
registered buffers, so ``.to(device)`` and ``state_dict`` work. Adjoints are taken with respect to
the Euclidean inner product ``<u, v> = sum(conj(u) * v)``.
"""

from __future__ import annotations

import torch


class LinearOperator(torch.nn.Module):
    """Base class: ``A(x)`` is the forward map, ``A.adjoint(y)`` its adjoint, ``A.normal(x)`` = AᴴA x.

    Subclasses implement :meth:`forward` and :meth:`adjoint`; they override :meth:`normal` where
    a cheaper form exists (for example a Cartesian SENSE operator skips half of its FFTs).

    Operators compose with ``@`` (``(A @ B)(x) == A(B(x))``) and ``A.H`` is the adjoint operator.
    Everything is written in differentiable torch operations, so autograd flows through them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Apply the operator: ``A x``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Apply the adjoint: ``Aᴴ y``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement adjoint()")

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the normal operator ``AᴴA x``."""
        return self.adjoint(self.forward(x))

    @property
    def H(self) -> LinearOperator:
        """The adjoint operator ``Aᴴ`` as a :class:`LinearOperator` (shares buffers with ``A``)."""
        return _Adjoint(self)

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Composition(self, other)


class _Adjoint(LinearOperator):
    """``Aᴴ`` of an operator ``A``; its adjoint is ``A`` again."""

    def __init__(self, op: LinearOperator) -> None:
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op.forward(y)

    @property
    def H(self) -> LinearOperator:
        return self.op


class _Composition(LinearOperator):
    """``A @ B``: apply ``B`` first, then ``A``; adjoint ``Bᴴ Aᴴ``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        super().__init__()
        self.outer = outer
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.normal(self.inner(x)))


class Identity(LinearOperator):
    """The identity map (useful as a neutral element and in tests)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return y


class Diagonal(LinearOperator):
    """Elementwise multiplication by fixed weights ``w`` (e.g. the square roots of statistical weights).

    Args:
        weights: broadcastable to the operator's input; the output has the broadcast shape.
    """

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weights", weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weights * x

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (self.weights.conj() if self.weights.is_complex() else self.weights) * y


class RepeatItems(LinearOperator):
    """An operator on ``S`` items applied to ``S × n`` copies laid out item-major.

    ``x`` of shape ``(S·n, *item)`` holds ``n`` versions of each item ``s`` at rows
    ``s·n … s·n + n − 1`` (``torch.repeat_interleave(…, n, dim=0)`` order); each version goes
    through ``op`` with item ``s``'s parameters. This lets a posterior sampler draw ``n`` samples
    of ``S`` items in one batch through an operator built for the ``S`` items alone.

    Args:
        op: acts on ``(S, *item)``.
        n: versions per item.
    """

    def __init__(self, op: LinearOperator, n: int) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n: expected >= 1, got {n}")
        self.op, self.n = op, n

    def _apply(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.n == 1:
            return fn(x)
        if x.shape[0] % self.n:
            raise ValueError(f"x: expected a batch that is a multiple of {self.n}, got {x.shape[0]}")
        xs = x.reshape(x.shape[0] // self.n, self.n, *x.shape[1:])
        out = torch.stack([fn(xs[:, j]) for j in range(self.n)], dim=1)
        return out.reshape(x.shape[0], *out.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(self.op.forward, x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._apply(self.op.adjoint, y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(self.op.normal, x)
