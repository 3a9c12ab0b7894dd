"""Conditions for conditional CT priors made on the fly: the FBP image of a random limited-angle scan.

Registered as the pair simulator ``ct_limited_angle_fbp`` (``data.condition.simulate`` in a
training YAML): each drawn training slice gets a parallel-beam scan over a random arc in
``[arc_min_deg, arc_max_deg]`` from a random start angle, ``views_per_deg`` views per degree,
noiseless line integrals, and its ramp-filtered back-projection as the condition channel
(DOLCE, Liu et al. 2023). The images are the prior's normalised slices (pixel size
``pixel_mm``); the projectors are ASTRA's, on the device of the images.
"""

from __future__ import annotations

import math

import torch

from ...errors import ArgumentError
from ...physics.ct import CTGeometry, CTProjector
from ..registry import register_pair_simulator
from .fbp import fbp


def limited_angle_fbp(
    arc_min_deg: float = 60.0, arc_max_deg: float = 150.0, views_per_deg: float = 1.0, pixel_mm: float = 1.0, filter: str = "ram-lak"
):
    """A simulator ``(images (n, H, W) real, generator) -> FBP conditions (n, 1, H, W)`` (see module docstring)."""
    if not 0 < arc_min_deg <= arc_max_deg <= 180:
        raise ArgumentError(f"data.condition.options: expected 0 < arc_min_deg <= arc_max_deg <= 180, got {arc_min_deg} / {arc_max_deg}")
    if not views_per_deg > 0 or not pixel_mm > 0:
        raise ArgumentError(f"data.condition.options: expected views_per_deg > 0 and pixel_mm > 0, got {views_per_deg} / {pixel_mm}")

    def simulate(images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if images.is_complex() or images.ndim != 3:
            raise ArgumentError(f"ct_limited_angle_fbp: expected real 2-D slices (n, H, W), got {images.dtype} {tuple(images.shape)}")
        u = torch.rand((images.shape[0], 2), generator=g, dtype=torch.float64)
        out = []
        for img, (a, s) in zip(images, u.tolist()):
            arc = arc_min_deg + a * (arc_max_deg - arc_min_deg)
            geom = CTGeometry.create(
                "parallel", tuple(img.shape), (pixel_mm, pixel_mm), max(2, math.ceil(arc * views_per_deg)), arc_deg=arc, start_deg=360.0 * s
            )
            op = CTProjector(geom)
            out.append(fbp(op(img[None].float()), geom, filter, op)[0])
        return torch.stack(out)[:, None].to(images.dtype)

    return simulate


register_pair_simulator("ct_limited_angle_fbp", limited_angle_fbp)
