"""Reconstruct a sinogram file slice-batch by slice-batch into a HU volume."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...datasets.sinogram_io import SinogramFile
from ...errors import InputFileError
from ...physics.ct import CTProjector
from ...physics.ct.transmission import mu_to_hu
from .config import CTReconConfig
from .fbp import fbp
from .iterative import cgls, sirt, tv_pdhg


def reconstruct_sinogram(
    sf: SinogramFile, config: CTReconConfig, device: str = "cpu", progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Reconstruct every slice of ``sf``; returns HU ``(slices, rows, cols)`` float32."""
    geom = sf.geometry
    if geom.is_3d:
        raise InputFileError(
            sf.path,
            "geometry",
            "a 2-D (parallel or fan) scan",
            f"beam {geom.beam!r}: 3-D reconstruction from sinogram files is not supported yet",
        )
    op = CTProjector(geom)
    mu_w = float(sf.attrs.get("mu_water_per_mm", 0.0192))
    iters = config.iterations
    n = sf.sino.shape[0]
    out = np.empty((n, *geom.image_shape), dtype=np.float32)
    for start in range(0, n, config.batch):
        y = torch.from_numpy(sf.sino[start : start + config.batch]).to(device)
        if config.method == "fbp":
            mu = fbp(y, geom, config.filter, op)
        elif config.method == "sirt":
            mu = sirt(op, y, iters)
        elif config.method == "cgls":
            mu = cgls(op, y, iters)
        else:
            mu = tv_pdhg(op, y, config.lam, iters)
        out[start : start + y.shape[0]] = mu_to_hu(mu, mu_w).cpu().numpy()
        if progress:
            progress(min(start + config.batch, n), n)
    return out
