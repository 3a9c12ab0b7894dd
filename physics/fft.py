"""Centred, unitary FFTs (the convention of fastMRI, SigPy and BART).

``fftc(x) = fftshift(fft(ifftshift(x), norm="ortho"))`` over the last ``ndim`` axes, so the
k-space centre sits at index ``n // 2`` and Parseval holds exactly (the transform is unitary and
its adjoint is its inverse).
"""

from __future__ import annotations

import torch


def _dims(ndim: int) -> tuple[int, ...]:
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim: expected 1, 2 or 3 transform axes, got {ndim}")
    return tuple(range(-ndim, 0))


def fftc(x: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred unitary forward FFT over the last ``ndim`` axes.

    Args:
        x: complex tensor ``(..., [D,] H, W)``; real input is promoted to complex.
        ndim: number of trailing axes to transform (2 for slices, 3 for volumes).

    Returns:
        Complex tensor of the same shape (k-space, centre at ``n // 2``).
    """
    dims = _dims(ndim)
    return torch.fft.fftshift(torch.fft.fftn(torch.fft.ifftshift(x, dim=dims), dim=dims, norm="ortho"), dim=dims)


def ifftc(k: torch.Tensor, ndim: int = 2) -> torch.Tensor:
    """Centred unitary inverse FFT over the last ``ndim`` axes (the adjoint of :func:`fftc`)."""
    dims = _dims(ndim)
    return torch.fft.fftshift(torch.fft.ifftn(torch.fft.ifftshift(k, dim=dims), dim=dims, norm="ortho"), dim=dims)
