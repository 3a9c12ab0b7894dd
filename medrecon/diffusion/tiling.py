"""A denoiser applied in overlapping tiles (MONAI's sliding-window inference): bounded memory on large
images, and the context the network was trained on.

MONAI's ``DiffusionModelUNet`` always has self-attention in its middle block, whose memory grows with
the square of the pixel count: a 450×900 OCT B-scan at 1/4 resolution is 25,000 tokens, and four
samples of it took 24 GB on the CPU. Priors trained on small patches also never saw attention over
that many tokens. :class:`TiledDenoiser` hands ``D(x, σ, cond)`` to
``monai.inferers.sliding_window_inference`` (windows ``tile × tile``, overlapping by the fraction
``overlap``, Gaussian blending); the image and its condition channels travel as one tensor, and each
window's noise level is looked up from the batch item it was cut from.
"""

from __future__ import annotations

import torch

from .denoiser import Denoiser


class TiledDenoiser(Denoiser):
    """``base`` applied to overlapping ``tile × tile`` windows of real 2-D images ``(B, H, W)``
    (``tile³`` windows of volumes ``(B, D, H, W)`` for a 3-D prior).

    Args:
        base: the denoiser; its ``schedule`` and ``info`` are passed through.
        tile: window side in pixels (images no larger go through whole).
        overlap: overlap of neighbouring windows as a fraction of ``tile`` (``[0, 1)``).
        max_batch: windows per network call.
    """

    def __init__(self, base: Denoiser, tile: int = 128, overlap: float = 0.25, max_batch: int = 16) -> None:
        super().__init__()
        if base.complex_data:
            raise ValueError("base: tiling is for real images")
        if tile < 8 or not 0 <= overlap < 1:
            raise ValueError(f"tile / overlap: expected >= 8 / in [0, 1), got {tile} / {overlap}")
        self.base, self.tile, self.overlap, self.max_batch = base, tile, overlap, max_batch
        self.complex_data = False
        self.spatial_dims = getattr(getattr(base, "net", None), "spatial_dims", 2)
        self.schedule = getattr(base, "schedule", None)
        self.info = getattr(base, "info", {})

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        from monai.inferers import sliding_window_inference

        sigma = self._check(x, sigma)
        if all(n <= self.tile for n in x.shape[1:]):
            return self.base(x, sigma, cond)
        stacked = x[:, None] if cond is None else torch.cat((x[:, None], cond.to(x.dtype)), dim=1)

        def predictor(windows: torch.Tensor, coords) -> torch.Tensor:
            items = [int(c[0].start) for c in coords]  # each window's batch item
            c = None if cond is None else windows[:, 1:]
            return self.base(windows[:, 0], sigma[items], c)[:, None]

        out = sliding_window_inference(
            stacked, (self.tile,) * (x.ndim - 1), self.max_batch, predictor, overlap=self.overlap, mode="gaussian", with_coord=True
        )
        return torch.as_tensor(out)[:, 0]


def windowed(denoiser: Denoiser, tile: int | None, overlap: float = 0.25) -> Denoiser:
    """``denoiser`` on ``tile``-pixel windows if it was trained on patches smaller than its images
    (``train_config.crop`` in its record); a prior trained on whole images, or ``tile`` 0 / ``None``,
    sees whole images."""
    info = getattr(denoiser, "info", {}) or {}
    crop = int(info.get("train_config", {}).get("crop", 0) or 0)
    if not tile or crop <= 0:
        return denoiser
    return TiledDenoiser(denoiser, tile, overlap)
