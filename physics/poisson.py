"""Poisson draws on the data's device with an explicit generator (CT transmission, PET emission)."""

from __future__ import annotations

import torch


def draw_poisson(mean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``Poisson(mean)`` elementwise, on ``mean``'s device.

    Args:
        mean: non-negative expected counts (any shape, float32 or float64).
        generator: explicit RNG. For data on a GPU with a CPU generator, a GPU generator seeded
            from it draws the noise there (no host round trip); the draw is still a pure function of
            the given generator's state.

    Returns:
        Counts, same dtype, shape and device as ``mean``.
    """
    dev = mean.device
    if dev.type != "cpu" and generator.device.type == "cpu":
        generator = torch.Generator(device=dev).manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
    src = mean if generator.device == dev else mean.to(generator.device)
    return torch.poisson(src, generator=generator).to(dev)
