"""Monochromatic transmission CT measurement model and Hounsfield-unit conversion.

``counts ~ Poisson(I0 · exp(-p)) + N(0, σ_e²)`` for line integrals ``p`` (dimensionless: μ in 1/mm
times mm), followed by the log transform ``p̂ = -log(max(counts, c_min) / I0)``.
"""

from __future__ import annotations

import torch

from ..poisson import draw_poisson

MU_WATER_PER_MM = 0.0192  # linear attenuation of water at ~70 keV effective energy (0.192 / cm)
HU_PER_UNIT = 1000.0  # CT priors see x = HU / HU_PER_UNIT: air -1, water 0, dense bone ~ +1.5
HU_NORMALISATION = "HU / 1000"  # the prior.json record of that scale


def hu_to_mu(hu: torch.Tensor, mu_water: float = MU_WATER_PER_MM) -> torch.Tensor:
    """Hounsfield units → linear attenuation (1/mm): ``μ = μ_w (1 + HU / 1000)``."""
    return mu_water * (1.0 + hu / 1000.0)


def mu_to_hu(mu: torch.Tensor, mu_water: float = MU_WATER_PER_MM) -> torch.Tensor:
    """Linear attenuation (1/mm) → Hounsfield units: ``HU = 1000 (μ / μ_w − 1)``."""
    return 1000.0 * (mu / mu_water - 1.0)


def simulate_counts(
    line_integrals: torch.Tensor,
    dose: float,
    generator: torch.Generator,
    electronic_sigma: float = 0.0,
) -> torch.Tensor:
    """Detected counts for ``dose`` incident photons per detector bin.

    Args:
        line_integrals: ``p >= 0`` (any shape), float.
        dose: incident photons per bin ``I0`` (> 0), e.g. 1e5 (standard dose) or 1e4 (low dose).
        generator: explicit RNG (reproducibility). For data on a GPU with a CPU generator, a GPU
            generator seeded from it draws the noise there (no host round trip).
        electronic_sigma: standard deviation of additive Gaussian electronic noise, in counts.

    Returns:
        Counts, float32, same shape.
    """
    if dose <= 0:
        raise ValueError(f"dose: expected > 0 photons per bin, got {dose}")
    if electronic_sigma < 0:
        raise ValueError(f"electronic_sigma: expected >= 0, got {electronic_sigma}")
    mean = dose * torch.exp(-line_integrals.to(torch.float64))
    dev = line_integrals.device
    counts = draw_poisson(mean, generator)
    if electronic_sigma > 0:
        noise = torch.randn(counts.shape, generator=generator, dtype=torch.float64, device=generator.device).to(dev)
        counts = counts + electronic_sigma * noise
    return counts.to(torch.float32)


def log_transform(counts: torch.Tensor, dose: float, min_count: float = 1.0) -> torch.Tensor:
    """Line integrals from counts: ``-log(max(counts, min_count) / dose)`` (photon starvation is
    clipped at ``min_count``)."""
    if min_count <= 0:
        raise ValueError(f"min_count: expected > 0, got {min_count}")
    return -torch.log(torch.clamp(counts, min=min_count) / dose)
