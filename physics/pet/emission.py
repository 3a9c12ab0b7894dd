"""PET emission model: ``ȳ = n ⊙ a ⊙ P x + r`` with Poisson counts ``y ~ Poisson(ȳ)``.

- ``P``: line integrals of the activity image through the package's ASTRA projector
  (:class:`~medrecon.physics.ct.CTProjector`, 2-D parallel beam: the direct-plane sinogram of a PET
  ring; the same class takes ``parallel3d`` geometries for 3-D later).
- ``a = exp(-P μ)``: attenuation factors from a μ-map at 511 keV, itself from a CT by the bilinear
  HU → μ conversion of Carney et al. (Med Phys 33:976, 2006) at 120 kVp.
- ``n``: normalisation (detector efficiencies × geometric factors) per sinogram bin.
- ``r``: the additive randoms + scatter background (kept outside the linear operator).

The linear part ``A = diag(n ⊙ a) P`` is the :class:`EmissionOperator`; ``Aᵀ 1`` is the sensitivity
image of MLEM / OSEM. Written here because neither ASTRA nor MONAI offers an emission model; the
projector is ASTRA's.
"""

from __future__ import annotations

import dataclasses

import torch

from ..ct.geometry import CTGeometry
from ..ct.projector import CTProjector
from ..linop import LinearOperator

MU_WATER_511_PER_MM = 0.0096  # water at 511 keV: 0.096 / cm
# Carney et al. 2006, Table I, 120 kVp: μ = a (HU + 1000) + b above the break point (1/cm per HU, 1/cm, HU)
CARNEY_120KVP = (5.10e-5, 4.71e-2, 47.0)


def hu_to_mu_511(hu: torch.Tensor, bone: tuple[float, float, float] = CARNEY_120KVP) -> torch.Tensor:
    """CT numbers → linear attenuation at 511 keV in 1/mm (bilinear, Carney et al. 2006).

    Below the break point: ``μ = μ_water,511 (1 + HU/1000)`` (air–water mixture); above it:
    ``μ = a (HU + 1000) + b`` (water–bone mixture; a, b, break point for the CT's tube voltage).
    Values below −1000 HU give 0.

    Args:
        hu: any shape, float.
        bone: ``(a [1/cm per HU], b [1/cm], break point [HU])``; default 120 kVp.
    """
    a, b, bp = bone
    soft = MU_WATER_511_PER_MM * (1.0 + hu / 1000.0)
    dense = (a * (hu + 1000.0) + b) / 10.0
    return torch.where(hu <= bp, soft, dense).clamp(min=0.0)


def attenuation_factors(projector: CTProjector, mu_per_mm: torch.Tensor) -> torch.Tensor:
    """Survival probability of a coincidence pair per bin: ``exp(−P μ)``, shape of the sinogram."""
    return torch.exp(-projector(mu_per_mm))


class EmissionOperator(LinearOperator):
    """``A x = m ⊙ P x`` with per-bin multiplicative factors ``m = n ⊙ a`` (normalisation × attenuation).

    Args:
        geometry: a 2-D ``parallel`` :class:`CTGeometry` (image ``(H, W)`` in mm, the sinogram's views
            and detector bins).
        multiplicative: ``(S, V, D)`` or ``(V, D)`` float32 factors ``m`` (≥ 0), or None for 1.

    Shapes: ``forward`` maps activity ``(S, H, W)`` float32 to expected trues ``(S, V, D)``; ``adjoint``
    the reverse. With ``(S, V, D)`` factors the operator is tied to a batch of ``S`` slices.
    """

    def __init__(self, geometry: CTGeometry, multiplicative: torch.Tensor | None = None) -> None:
        super().__init__()
        if geometry.beam != "parallel":
            raise ValueError(f"geometry.beam: expected 'parallel' (2-D PET sinograms), got {geometry.beam!r}")
        self.geometry = geometry
        self.projector = CTProjector(geometry)
        if multiplicative is not None:
            m = torch.as_tensor(multiplicative, dtype=torch.float32)
            if tuple(m.shape[-2:]) != geometry.sino_shape or m.ndim not in (2, 3):
                raise ValueError(f"multiplicative: expected (S, {geometry.n_views}, {geometry.n_det}) or (V, D), got {tuple(m.shape)}")
            if not bool(torch.all(torch.isfinite(m))) or bool(torch.any(m < 0)):
                raise ValueError("multiplicative: expected finite factors >= 0")
        else:
            m = torch.ones(geometry.sino_shape)
        self.register_buffer("multiplicative", m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multiplicative * self.projector(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.projector.adjoint(self.multiplicative * y)

    def sensitivity(self, n_slices: int) -> torch.Tensor:
        """``Aᵀ 1``: ``(n_slices, H, W)`` float32 (MLEM's normaliser)."""
        ones = torch.ones((n_slices, *self.geometry.sino_shape), device=self.multiplicative.device)
        return self.adjoint(ones)

    def subset(self, views: torch.Tensor) -> EmissionOperator:
        """The operator restricted to the sinogram views ``views`` (1-D indices; OSEM subsets)."""
        idx = [int(v) for v in views]
        geom = dataclasses.replace(self.geometry, angles_rad=tuple(self.geometry.angles_rad[i] for i in idx))
        m = self.multiplicative[..., idx, :]
        return EmissionOperator(geom, m).to(self.multiplicative.device)
