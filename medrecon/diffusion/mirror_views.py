"""Test-time mirror views: every other posterior sample is drawn on the left–right mirrored input.

A translation prior's samples of one slice agree closely with each other (the MR fixes most of
the CT), so what is left in their mean is the network's own error, which averaging more samples
does not remove. A head (or a body) is close to symmetric left to right, and the network's error is
not: drawing half of the samples on the mirrored image and condition, and mirroring them back,
averages two different errors at no extra cost. The sampler, the data-consistency and the slice
coupling see every sample in the original orientation; only the network call is mirrored.
A regression prior (one prediction per slice) gets the mean of its plain and mirrored predictions.

Written here because MONAI's inferers offer no per-item flip inside a sampler's network call.
"""

from __future__ import annotations

import torch

from .denoiser import Denoiser, WrappedDenoiser


def mirror_dim(axcodes: list[str] | tuple[str, ...]) -> int | None:
    """The image dimension (``-1`` columns, ``-2`` rows) that runs left–right for a prior whose voxel
    axes ``(col, row, slice)`` have these ``axcodes``; ``None`` when the slices are sagittal."""
    for dim, code in zip((-1, -2), axcodes[:2]):
        if code in ("R", "L"):
            return dim
    return None


class MirroredDenoiser(WrappedDenoiser):
    """``base`` seeing batch items ``b`` with ``(b mod samples)`` odd mirrored along image dimension ``dim``.

    The posterior engine lays out ``S`` items × ``N`` samples item-major (batch index
    ``s·N + j``), so sample ``j`` of every item is mirrored when ``j`` is odd.

    Args:
        base: the denoiser (e.g. a :class:`~medrecon.diffusion.tiling.TiledDenoiser`).
        samples: ``N``, the samples per item in each batch this denoiser sees.
        dim: ``-1`` (columns) or ``-2`` (rows) of real 2-D images ``(B, H, W)``; the condition
            ``(B, C, H, W)`` is mirrored along the same trailing dimension.
    """

    def __init__(self, base: Denoiser, samples: int, dim: int) -> None:
        super().__init__(base)
        if dim not in (-1, -2) or samples < 1:
            raise ValueError(f"dim / samples: expected -1 or -2 / >= 1, got {dim} / {samples}")
        self.samples, self.dim = samples, dim
        self.spatial_dims = 2

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        sigma = self._check(x, sigma)
        odd = (torch.arange(x.shape[0], device=x.device) % self.samples) % 2 == 1
        if not bool(odd.any()):
            return self.base(x, sigma, cond)
        pick = odd.view(-1, 1, 1)
        x_in = torch.where(pick, x.flip(self.dim), x)
        c_in = None if cond is None else torch.where(pick[:, None], cond.flip(self.dim), cond)
        out = self.base(x_in, sigma, c_in)
        return torch.where(pick, out.flip(self.dim), out)
