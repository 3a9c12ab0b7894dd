"""Retrospective undersampling of fully sampled k-space into a fastMRI multi-coil file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...datasets.fastmri import FastMRIFile, make_ismrmrd_header, write_fastmri_multicoil
from ...datasets.kspace_source import KSpaceSource
from ...physics.crop import center_crop
from ...physics.fft import ifftc
from ...physics.mri.coils import rss
from ...physics.mri.masks import MASK_KINDS_1D, MASK_KINDS_2D, gaussian2d_mask, line_mask, poisson_mask


@dataclass(frozen=True)
class MaskSpec:
    """How to undersample.

    Attributes:
        kind: one of ``random``, ``equispaced_fraction``, ``equispaced`` (1-D, fastMRI-identical) or
            ``poisson``, ``gaussian2d`` (2-D).
        acceleration: nominal acceleration (> 1).
        center_fraction: fully sampled centre fraction (1-D masks).
        calib: side of the fully sampled centre square (2-D masks).
        seed: RNG seed; the same mask is used for every slice of a volume (as fastMRI does).
    """

    kind: str = "equispaced_fraction"
    acceleration: float = 4.0
    center_fraction: float = 0.08
    calib: int = 24
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS_1D + MASK_KINDS_2D:
            raise ValueError(f"mask kind: expected one of {MASK_KINDS_1D + MASK_KINDS_2D}, got {self.kind!r}")
        if not self.acceleration > 1:
            raise ValueError(f"acceleration: expected > 1, got {self.acceleration}")

    def make(self, h: int, w: int) -> tuple[np.ndarray, int]:
        """The mask ``(W,)`` (1-D) or ``(H, W)`` (2-D) float32 and its number of centre lines / calib side."""
        if self.kind in MASK_KINDS_1D:
            acc = int(self.acceleration) if float(self.acceleration).is_integer() else self.acceleration
            lm = line_mask(self.kind, w, self.center_fraction, acc, self.seed)
            return lm.mask, lm.num_low_frequencies
        if self.kind == "poisson":
            return poisson_mask((h, w), self.acceleration, self.calib, self.seed), self.calib
        return gaussian2d_mask((h, w), self.acceleration, self.calib, self.seed), self.calib


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
        ValueError: when the source already looks undersampled (it has a mask).
    """
    if src.mask() is not None:
        raise ValueError(f"{src.path}: mask: expected fully sampled input, got a file that records an undersampling mask")
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
        "source": str(src.path),
        "acquisition": str(src.attrs.get("acquisition", "unknown")),
    }
    return write_fastmri_multicoil(out, slices(), src.num_slices, (c, h, w), target_shape, mask, header, attrs)
