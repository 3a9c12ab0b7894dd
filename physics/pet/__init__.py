"""PET physics: the 2-D emission operator (ASTRA line integrals, attenuation, normalisation), μ at 511 keV."""

from .emission import EmissionOperator, attenuation_factors, hu_to_mu_511

__all__ = ["EmissionOperator", "attenuation_factors", "hu_to_mu_511"]
