"""Simulate 2-D PET emission scans from activity images and their CT (Poisson prompts, attenuation, background)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...datasets.pet_images import PETImages
from ...datasets.sinogram_io import source_relative, write_sinogram
from ...memory import check_allocation
from ...physics.pet import EmissionOperator, attenuation_factors, hu_to_mu_511
from ...physics.poisson import draw_poisson
from .config import PETScanSpec


def emission_scan(images: PETImages, spec: PETScanSpec, device: str = "cpu") -> dict[str, np.ndarray]:
    """Counts and their model for every slice of ``images``.

    The activity of each slice is scaled so that the expected prompts are ``spec.counts``, of which
    ``background_fraction`` is a uniform randoms + scatter background; ``calibration`` is the
    factor from reconstructed activity back to the image's unit (1 / that scale).

    Returns:
        ``counts``, ``multiplicative``, ``background`` ``(S, V, D)``, ``calibration`` ``(S,)``,
        ``scaled_activity`` ``(S, H, W)`` (the noiseless truth on the reconstruction's scale), float32.
    """
    s, h, w = images.activity.shape
    geom = spec.geometry(h, w, images.pixel_mm)
    # the counts, their model (multiplicative, trues, background, mean), the float64 Poisson draw and the returned copies
    working = (np.float32,) * 6 + (np.float64,) * 2
    check_allocation(((s, *geom.sino_shape), np.float32), None, "views", working=working, what="a sinogram (with its model)")
    g = torch.Generator().manual_seed(spec.seed)
    mult = torch.ones((s, *geom.sino_shape), device=device)
    if spec.efficiency_sd > 0:
        eff = torch.exp(spec.efficiency_sd * torch.randn(geom.sino_shape, generator=g)).to(device)
        mult = mult * (eff / eff.mean())
    if spec.attenuation:
        mu = hu_to_mu_511(torch.from_numpy(images.guide_hu).to(device))
        mult = mult * attenuation_factors(EmissionOperator(geom).projector, mu)
    op = EmissionOperator(geom, mult).to(device)
    x = torch.from_numpy(images.activity).to(device)
    trues = op(x)
    total = trues.sum(dim=(-2, -1))
    if bool(torch.any(total <= 0)):
        empty = [images.slices[i] for i in torch.nonzero(total <= 0).flatten().tolist()]
        raise ValueError(f"activity: slices {empty} of {images.source} have no activity (no counts can be simulated)")
    scale = (1 - spec.background_fraction) * spec.counts / total
    background = torch.full_like(trues, spec.background_fraction * spec.counts / trues[0].numel())
    mean = trues * scale[:, None, None] + background
    counts = draw_poisson(mean.double(), g).float()
    out = {"counts": counts, "multiplicative": mult, "background": background, "calibration": 1 / scale}
    out["scaled_activity"] = x * scale[:, None, None]
    return {k: v.cpu().numpy().astype(np.float32) for k, v in out.items()}


def calibration(sf) -> np.ndarray:
    """Per-slice factors ``(S,)`` float32 from reconstructed activity to the source's unit (1 when not recorded).

    Raises:
        InputFileError: the attribute is not a JSON list of one finite positive factor per slice.
    """
    from ...errors import InputFileError

    text = sf.attrs.get("calibration", "null")
    n = sf.sino.shape[0]
    try:
        value = json.loads(text)
        factors = np.ones(n, np.float32) if value is None else np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        factors = None
    if factors is None or factors.shape != (n,) or not np.all(np.isfinite(factors)) or not np.all(factors > 0):
        shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:77] + "..."
        raise InputFileError(sf.path, "calibration", f"a JSON list of {n} finite factors > 0 (one per slice)", shown)
    return factors.astype(np.float32)


def simulate_pet(images: PETImages, spec: PETScanSpec, out: str | Path, device: str = "cpu", source_headers=()) -> Path:
    """Simulate and write a PET sinogram file (layout in :mod:`medrecon.datasets.sinogram_io`); ``source_headers``:
    the DICOM headers of the simulated slices, kept so a reconstruction can join their study."""
    scan = emission_scan(images, spec, device)
    geom = spec.geometry(*images.activity.shape[1:], images.pixel_mm)
    attrs = {
        "calibration": json.dumps([float(c) for c in scan["calibration"]]),
        "unit": images.unit,
        "counts": float(spec.counts),
        "background_fraction": float(spec.background_fraction),
        "efficiency_sd": float(spec.efficiency_sd),
        "attenuation": bool(spec.attenuation),
        "source": Path(images.source).name,
        **source_relative(images.source, out),
        "notes": images.notes,
        "seed": int(spec.seed),
    }
    arrays = {"multiplicative": scan["multiplicative"], "background": scan["background"], "guide_hu": images.guide_hu}
    return write_sinogram(
        out, scan["counts"], geom, images.affine, images.slices, attrs, arrays, modality="PET", source_headers=source_headers
    )
