"""Conditions for conditional CT priors made on the fly: the FBP image of a random limited-angle scan.

Registered as the pair simulator ``ct_limited_angle_fbp`` (``data.condition.simulate`` in a
training YAML), DOLCE-style (Liu, Anirudh et al. 2023). For each drawn training slice (on the CT
priors' scale ``x = HU / 1000``, pixel size ``pixel_mm``):

1. a scan over a random arc in ``[arc_min_deg, arc_max_deg]`` from a random start angle, with a
   random number of views (``arc × U(views_per_deg_min, views_per_deg_max)``), parallel or fan
   beam (:func:`scan_geometry`, the geometry :func:`medrecon.tasks.ct.diffusion` rebuilds at
   reconstruction);
2. line integrals of ``μ = μ_water (1 + x)`` through the package's ASTRA projector, on the device
   of the images (the GPU when training there);
3. Poisson counts at a dose drawn log-uniformly from ``[dose_min, dose_max]`` and the log
   transform (``dose_min = 0``: noiseless);
4. the ramp-filtered back-projection, back on the prior's scale, as the condition channel
   (:func:`condition_image`, which reconstruction calls on the measured sinogram).
"""

from __future__ import annotations

import math

import torch

from ...errors import ArgumentError
from ...physics.ct import CTGeometry, CTProjector
from ...physics.ct.transmission import MU_WATER_PER_MM, log_transform, simulate_counts
from ..registry import register_pair_simulator
from .config import CTScanSpec
from .fbp import fbp

CONDITION_FILTER = "ram-lak"


def condition_image(sino: torch.Tensor, geometry: CTGeometry, op: CTProjector | None = None) -> torch.Tensor:
    """The condition channel of a conditional CT prior: FBP of ``(B, views, det)`` line integrals → ``(B, H, W)`` on HU / 1000."""
    return fbp(sino, geometry, CONDITION_FILTER, op) / MU_WATER_PER_MM - 1.0


def to_line_integrals(x: torch.Tensor, op: CTProjector) -> torch.Tensor:
    """Line integrals of slices ``x (B, H, W)`` on the prior's scale (μ clamped at 0 below air)."""
    return op(MU_WATER_PER_MM * torch.clamp(1.0 + x, min=0.0))


def limited_angle_fbp(
    arc_min_deg: float = 60.0,
    arc_max_deg: float = 150.0,
    views_per_deg_min: float = 0.5,
    views_per_deg_max: float = 1.5,
    dose_min: float = 3e4,
    dose_max: float = 3e5,
    beam: str = "parallel",
    pixel_mm: float = 1.0,
):
    """A simulator ``(images (n, H, W) real on HU / 1000, generator) -> FBP conditions (n, 1, H, W)`` (module docstring)."""
    where = "data.condition.options"
    if not 0 < arc_min_deg <= arc_max_deg <= 360:
        raise ArgumentError(f"{where}: expected 0 < arc_min_deg <= arc_max_deg <= 360, got {arc_min_deg} / {arc_max_deg}")
    if not 0 < views_per_deg_min <= views_per_deg_max:
        raise ArgumentError(f"{where}: expected 0 < views_per_deg_min <= views_per_deg_max, got {views_per_deg_min} / {views_per_deg_max}")
    if not (dose_min == 0 or 0 < dose_min <= dose_max) or not math.isfinite(dose_max):
        raise ArgumentError(f"{where}: expected dose_min 0 (noiseless) or 0 < dose_min <= dose_max < inf, got {dose_min} / {dose_max}")
    if beam not in ("parallel", "fan") or not pixel_mm > 0:
        raise ArgumentError(f"{where}: expected beam parallel or fan and pixel_mm > 0, got {beam!r} / {pixel_mm}")

    def simulate(images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if images.is_complex() or images.ndim != 3:
            raise ArgumentError(f"ct_limited_angle_fbp: expected real 2-D slices (n, H, W), got {images.dtype} {tuple(images.shape)}")
        u = torch.rand((images.shape[0], 4), generator=g, dtype=torch.float64).tolist()
        out = []
        for img, (a, s, v, d) in zip(images, u):
            arc = arc_min_deg + a * (arc_max_deg - arc_min_deg)
            views = max(2, round(arc * (views_per_deg_min + v * (views_per_deg_max - views_per_deg_min))))
            geom = scan_geometry(beam, tuple(img.shape), pixel_mm, views, arc, 360.0 * s)
            op = CTProjector(geom)
            p = to_line_integrals(img[None].float(), op)
            if dose_min > 0:
                dose = math.exp(math.log(dose_min) + d * (math.log(dose_max) - math.log(dose_min)))
                p = log_transform(simulate_counts(p, dose, g), dose)
            out.append(condition_image(p, geom, op)[0])
        return torch.stack(out)[:, None].to(images.dtype)

    return simulate


def scan_geometry(beam: str, shape: tuple[int, int], pixel_mm: float, views: int, arc_deg: float, start_deg: float = 0.0) -> CTGeometry:
    """A 2-D scan geometry with the fan distances of :class:`~medrecon.tasks.ct.config.CTScanSpec`'s defaults."""
    spec = CTScanSpec()
    fan = beam == "fan"
    return CTGeometry.create(
        beam,
        shape,
        (pixel_mm, pixel_mm),
        views,
        arc_deg=arc_deg,
        start_deg=start_deg,
        source_origin_mm=spec.source_origin_mm if fan else 0.0,
        origin_det_mm=spec.origin_det_mm if fan else 0.0,
    )


register_pair_simulator("ct_limited_angle_fbp", limited_angle_fbp)
