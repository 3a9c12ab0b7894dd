"""Image gradient and slice-to-slice differences as linear operators: forward differences.

Written by hand because TV solvers need both ``∇`` and its exact adjoint ``∇ᴴ = −div`` on batched
torch tensors (autograd would give the adjoint, but at the cost of a graph per iteration).
"""

from __future__ import annotations

import torch

from .linop import LinearOperator


class FiniteDifference2D(LinearOperator):
    """``∇ : (B, H, W) → (B, 2, H, W)``: row then column forward differences, zero on the last row / column.

    The adjoint is the negative divergence with the matching boundary terms, so
    ``<∇x, p> = <x, ∇ᴴp>`` holds exactly (``medrecon.physics.testing.check_operator``).
    Works for real and complex images.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"x: expected 2-D images (B, H, W), got shape {tuple(x.shape)}")
        gy = torch.zeros_like(x)
        gx = torch.zeros_like(x)
        gy[:, :-1] = x[:, 1:] - x[:, :-1]
        gx[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
        return torch.stack((gy, gx), dim=1)

    def adjoint(self, p: torch.Tensor) -> torch.Tensor:
        if p.ndim != 4 or p.shape[1] != 2:
            raise ValueError(f"p: expected gradients (B, 2, H, W), got shape {tuple(p.shape)}")
        py, px = p[:, 0], p[:, 1]
        dy = torch.zeros_like(py)
        dx = torch.zeros_like(px)
        dy[:, 0] = -py[:, 0]
        dy[:, 1:-1] = py[:, :-2] - py[:, 1:-1]
        dy[:, -1] = py[:, -2]
        dx[:, :, 0] = -px[:, :, 0]
        dx[:, :, 1:-1] = px[:, :, :-2] - px[:, :, 1:-1]
        dx[:, :, -1] = px[:, :, -2]
        return dy + dx


class SliceDifference(LinearOperator):
    """Differences between neighbouring slices of a stack laid out item-major with ``n`` versions each.

    ``x (S·n, H, W)`` holds version ``j`` of slice ``s`` at row ``s·n + j``
    (:class:`~medrecon.physics.linop.RepeatItems` order); the output ``((S − 1)·n, H, W)`` is
    ``x[s + 1, j] − x[s, j]``: each version is coupled only to the same version of its neighbours
    (the z-derivative of every posterior sample's volume).

    With ``anchored`` the output ``(S·n, H, W)`` starts with the first slice itself, ``x[0, j]``:
    the difference to a slice ``−1`` held fixed outside the stack (the caller puts that slice in
    the penalty's target, ``||R x − r||²``), so that a volume sampled in consecutive batches is
    coupled across the batch boundaries too.
    """

    def __init__(self, n: int = 1, anchored: bool = False) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"n: expected >= 1, got {n}")
        self.n, self.anchored = n, anchored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] % self.n:
            raise ValueError(f"x: expected a batch that is a multiple of {self.n}, got {x.shape[0]}")
        xs = x.reshape(x.shape[0] // self.n, self.n, *x.shape[1:])
        d = xs[1:] - xs[:-1]
        if self.anchored:
            d = torch.cat((xs[:1], d))
        return d.reshape(-1, *x.shape[1:])

    def adjoint(self, d: torch.Tensor) -> torch.Tensor:
        ds = d.reshape(d.shape[0] // self.n, self.n, *d.shape[1:])
        lead = ds[:1] if self.anchored else None
        if self.anchored:
            ds = ds[1:]
        out = torch.zeros((ds.shape[0] + 1, *ds.shape[1:]), dtype=d.dtype, device=d.device)
        out[:-1] -= ds
        out[1:] += ds
        if lead is not None:
            out[:1] += lead
        return out.reshape(-1, *d.shape[1:])
