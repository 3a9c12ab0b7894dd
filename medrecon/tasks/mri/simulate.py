"""Retrospective undersampling of fully sampled k-space into a fastMRI multi-coil file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...datasets.fastmri import FastMRIFile, make_ismrmrd_header, write_fastmri_multicoil
from ...datasets.kspace_source import KSpaceSource
from ...errors import InputFileError
from ...physics.crop import center_crop
from ...physics.fft import ifftc
from ...physics.mri.coils import rss
from .config import MaskSpec


def _reference(src: KSpaceSource, i: int, k: np.ndarray) -> np.ndarray:
    t = src.target(i)
    if t is not None:
        return t
    img = rss(ifftc(torch.from_numpy(k)), dim=0).numpy()
    rs = src.geometry.recon_size
    return center_crop(img, rs) if rs is not None and rs[0] <= img.shape[0] and rs[1] <= img.shape[1] else img


def simulate_undersampling(src: KSpaceSource, spec: MaskSpec, out: str | Path) -> Path:
    """Undersample every slice of ``src`` with one mask and write a fastMRI multi-coil file.

    The file holds the masked ``kspace``, the ``mask``, ``reconstruction_rss`` of the fully sampled
    data (or the source's own target), the source's ISMRMRD header (or a generated one) and the
    attributes ``acceleration``, ``center_fraction``, ``num_low_frequency``, ``mask_kind``,
    ``seed``, ``source``, ``max`` and ``norm``.

    Raises:
        InputFileError: when the source already looks undersampled (it has a mask).
    """
    if src.mask() is not None:
        raise InputFileError(src.path, "mask", "fully sampled input", "a file that records an undersampling mask")
    c, h, w = src.shape
    mask, nlow = spec.make(h, w)
    mask_b = mask[None, None, :] if mask.ndim == 1 else mask[None]

    def slices():
        for i in range(src.num_slices):
            k = src.kspace(i)
            yield (k * mask_b).astype(np.complex64), _reference(src, i, k)

    target_shape = _reference(src, 0, src.kspace(0)).shape
    if isinstance(src, FastMRIFile) and src.encoding is not None:
        import h5py

        with h5py.File(src.path, "r") as f:
            header = bytes(f["ismrmrd_header"][()])
    else:
        vs = src.geometry.voxel_size_mm
        rs = target_shape
        header = make_ismrmrd_header((h, w, 1), (rs[0], rs[1], 1), (rs[0] * vs[0], rs[1] * vs[1], vs[2]), w // 2, w)
    attrs = {
        "acceleration": float(spec.acceleration),
        "center_fraction": float(spec.center_fraction),
        "num_low_frequency": int(nlow),
        "mask_kind": spec.kind,
        "seed": int(spec.seed),
        "source": Path(src.path).name,
        "acquisition": str(src.attrs.get("acquisition", "unknown")),
    }
    return write_fastmri_multicoil(out, slices(), src.num_slices, (c, h, w), target_shape, mask, header, attrs)
