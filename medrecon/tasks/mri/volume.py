"""Volume reconstruction: read slices from any :class:`KSpaceSource`, estimate coil maps, solve."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...datasets.kspace_source import KSpaceSource
from ...errors import ArgumentError
from ...physics.crop import center_crop
from ...physics.mri.coils import espirit_maps
from .classical import cg_sense, cs_l1_wavelet, zero_filled
from .config import ClassicalConfig


def slice_maps(src: KSpaceSource, index: int, kspace: torch.Tensor) -> torch.Tensor:
    """Coil maps of one slice: those shipped with the data, else ESPIRiT from its calibration region."""
    shipped = src.maps(index)
    if shipped is not None:
        return torch.from_numpy(shipped).to(kspace.device)
    return espirit_maps(kspace)


def reconstruct_volume(
    src: KSpaceSource,
    config: ClassicalConfig,
    slices: Sequence[int] | None = None,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Reconstruct the chosen slices of a raw file.

    Args:
        src: an opened raw file.
        config: method and its settings.
        slices: slice indices (default: all).
        device: torch device for the operators and solvers.
        progress: called as ``progress(done, total)`` after each slice.

    Returns:
        ``(len(slices), rows, cols)`` float32 magnitude volume (cropped to the recon size when the
        file has one and ``config.crop_to_recon_size``).
    """
    idx = list(range(src.num_slices)) if slices is None else list(slices)
    for i in idx:
        if not 0 <= i < src.num_slices:
            raise ArgumentError(f"--slices: expected indices 0..{src.num_slices - 1} of {src.path}, got {i} (out of range)")
    mask = torch.from_numpy(src.sampling_pattern(idx[0]))[None, None].to(device)  # (1, 1, 1|H, W)
    out = []
    for n, i in enumerate(idx):
        k = torch.from_numpy(src.kspace(i)).to(device)
        if config.method == "zf":
            img = zero_filled(k[None])[0]
        else:
            maps = slice_maps(src, i, k)[None]
            solver = cg_sense if config.method == "sense" else cs_l1_wavelet
            img = solver(k[None], maps, mask, lam=config.weight, iters=config.iterations)[0].abs()
        img = img.detach().cpu().numpy().astype(np.float32)
        if config.crop_to_recon_size and src.geometry.recon_size is not None:
            rs = src.geometry.recon_size
            if rs[0] <= img.shape[0] and rs[1] <= img.shape[1]:
                img = center_crop(img, rs)
        out.append(img)
        if progress is not None:
            progress(n + 1, len(idx))
    return np.stack(out)
