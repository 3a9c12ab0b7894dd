"""Operator norm by power iteration (one implementation for CT step sizes and diffusion guidance)."""

from __future__ import annotations

import torch

from ..physics.linop import LinearOperator


def operator_norm(op: LinearOperator, like: torch.Tensor, iters: int = 30, generator: torch.Generator | None = None) -> float:
    """``||A||₂`` by power iteration on ``AᴴA`` from a random start shaped like ``like`` (an input of ``A``).

    Works for real and complex operators (a complex ``like`` gets a complex start).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    real = like.real.dtype if like.is_complex() else like.dtype
    with torch.no_grad():
        x = torch.rand(like.shape, generator=g, dtype=real)
        if like.is_complex():
            x = torch.complex(x, torch.rand(like.shape, generator=g, dtype=real))
        x = x.to(like.device)
        s = 0.0
        for _ in range(iters):
            x = op.normal(x)
            s = float(torch.linalg.vector_norm(x))
            x = x / max(s, 1e-30)
    return s**0.5
