"""A prior trained on noisy images, turned into a denoiser of the clean images underneath.

A network trained on images ``y = x + n`` with white noise ``n ~ N(0, σ_d²)`` (OCT speckle in the
log domain; no clean image exists to train on) learns ``D_y(v, σ) = E[y | y + σ z = v]``. The
same ``v`` is ``x`` plus noise of variance ``τ² = σ² + σ_d²``, and by Tweedie's formula on the
density of ``v`` — whose score the network gives as ``(D_y(v, σ) − v) / σ²`` — the denoiser of the
clean image at level ``τ`` is

    D_x(v, τ) = v + (τ² / σ²) · (D_y(v, σ) − v),   σ = √(τ² − σ_d²)

(Kim & Ye 2021, "Noise2Score", for the case ``σ = 0``; here at ``σ > 0`` where the network is
trained). It exists for ``τ > σ_d`` only, so chains that use it stop at a level above the data's
noise (``end`` of :class:`~medrecon.diffusion.posterior.PosteriorSettings`) and return their x̂₀
there. Below ``τ = σ_d √(1 + κ²)`` (:data:`MIN_RATIO` ``= κ``) the network is called at ``κ σ_d``.

Written here because no diffusion library wraps a noisy-data prior this way; one formula.
"""

from __future__ import annotations

import torch

from .denoiser import Denoiser, WrappedDenoiser

MIN_RATIO = 0.1


class NoisyDataDenoiser(WrappedDenoiser):
    """``D_x(v, τ, cond)`` from a prior ``base`` of noisy images with per-item noise σ_d (module docstring).

    Args:
        base: the prior trained on noisy images (its ``schedule``, ``info`` are passed through).
        sigma_data: ``(B,)`` or scalar σ_d of each batch item on the prior's scale.
    """

    def __init__(self, base: Denoiser, sigma_data: torch.Tensor | float) -> None:
        super().__init__(base)
        self.sigma_data = torch.as_tensor(sigma_data, dtype=torch.float32).reshape(-1)
        if not bool(torch.all(self.sigma_data > 0)):
            raise ValueError("sigma_data: expected > 0")

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        tau = self._check(x, sigma).double()
        sd = (
            self.sigma_data.to(x.device).double().expand(x.shape[0])
            if self.sigma_data.numel() == 1
            else self.sigma_data.to(x.device).double()
        )
        if sd.shape[0] != x.shape[0]:
            raise ValueError(f"sigma_data: expected one per batch item ({x.shape[0]}), got {sd.shape[0]}")
        var = torch.maximum(tau**2 - sd**2, (MIN_RATIO * sd) ** 2)
        base_sigma = torch.sqrt(var)
        gain = (tau**2 / var).clamp(min=1.0)
        shape = (-1,) + (1,) * (x.ndim - 1)
        d = self.base(x, base_sigma.float(), cond)
        return x + gain.to(x.real.dtype).reshape(shape) * (d - x)
