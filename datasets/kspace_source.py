"""The common interface of every raw MRI input: lazy, per-slice, validated.

A :class:`KSpaceSource` gives slice-wise access to multi-coil Cartesian k-space. Single-coil data
are exposed with one coil. Every slice read is checked for NaN / Inf; the sizes a file declares are
checked against the memory budget when it is opened (:mod:`medrecon.memory`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..memory import check_allocation


@dataclass
class SliceGeometry:
    """What a writer needs to place a reconstruction in space.

    Attributes:
        voxel_size_mm: ``(row, column, slice)`` spacing in mm of the reconstructed image grid.
        recon_size: ``(rows, cols)`` of the reference reconstruction (fastMRI ``reconSpace``), or
            ``None`` to keep the full k-space grid.
    """

    voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    recon_size: tuple[int, int] | None = None


@dataclass
class KSpaceSource:
    """Base class for raw-data readers.

    Attributes:
        path: the file.
        format: short name of the layout (``"fastmri-multicoil"``, ``"skmtea"``, ``"npz"``, ...).
        num_slices: number of 2-D slices.
        shape: ``(coils, H, W)`` of one slice's k-space.
        geometry: spacing and reference size.
        attrs: free-form metadata carried to outputs.
    """

    path: Path
    format: str
    num_slices: int
    shape: tuple[int, int, int]
    geometry: SliceGeometry = field(default_factory=SliceGeometry)
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Check the declared sizes against the memory budget before any slice is read: one k-space
        slice ``(C, H, W)`` complex64 with its working copy, and a volume of one float32 image per slice."""
        c, h, w = self.shape
        check_allocation(((c, h, w), np.complex64), self.path, "kspace", working=(np.complex64,), what="a k-space slice")
        check_allocation(((self.num_slices, h, w), np.float32), self.path, "kspace", what="a reconstructed volume")

    # -- to implement -----------------------------------------------------------------------
    def _read_kspace(self, index: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def mask(self) -> np.ndarray | None:
        """Sampling mask broadcastable to one slice ``(C, H, W)``: ``(1, W)`` or ``(H, W)`` float32;
        ``None`` when the file does not record one (then :meth:`sampling_pattern` infers it)."""
        return None

    def maps(self, index: int) -> np.ndarray | None:
        """Coil sensitivities shipped with the data ``(C, H, W)`` complex64, or ``None``."""
        return None

    def target(self, index: int) -> np.ndarray | None:
        """Reference magnitude image of slice ``index`` (real float32), or ``None``."""
        return None

    def dicom_reference(self):
        """``(affine, header)`` for a DICOM output: the reconstruction grid's voxel → RAS affine and a
        pydicom header of patient / study identifiers; ``None`` for files that record no slice
        position and orientation (fastMRI, SKM-TEA, ``.npz``)."""
        return None

    # -- shared -----------------------------------------------------------------------------
    def kspace(self, index: int) -> np.ndarray:
        """K-space of slice ``index``: ``(C, H, W)`` complex64, validated (finite, non-empty)."""
        if not 0 <= index < self.num_slices:
            raise IndexError(f"{self.path}: slice {index} out of range 0..{self.num_slices - 1}")
        k = self._read_kspace(index)
        if not np.all(np.isfinite(k)):
            raise InputFileError(self.path, f"kspace slice {index}", "finite values", "NaN or Inf")
        return np.ascontiguousarray(k, dtype=np.complex64)

    def sampling_pattern(self, index: int = 0) -> np.ndarray:
        """The recorded mask, or the pattern of non-zero k-space locations of slice ``index``.

        Returns:
            ``(1, W)`` when every row is sampled alike (1-D Cartesian), else ``(H, W)``; float32.
        """
        m = self.mask()
        if m is not None:
            return m
        sampled = np.any(self.kspace(index) != 0, axis=0)
        cols = sampled.any(axis=0)
        if np.array_equal(sampled, np.broadcast_to(cols, sampled.shape)):
            return cols[None].astype(np.float32)
        return sampled.astype(np.float32)


def check_mask_shape(path: Path, mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Normalise a stored mask to ``(1, W)`` or ``(H, W)`` float32, or raise naming the mismatch.

    A mask must also be finite, within [0, 1] and sample something (an all-zero mask leaves
    nothing to reconstruct from).
    """
    m = np.asarray(mask)
    if m.ndim == 1 and m.shape[0] == w:
        m = m.astype(np.float32)[None]
    elif m.ndim == 2 and m.shape in ((h, w), (1, w)):
        m = m.astype(np.float32)
    else:
        raise InputFileError(path, "mask", f"shape ({w},) or ({h}, {w}) matching the k-space", f"shape {m.shape}")
    if not np.all(np.isfinite(m)) or float(m.min()) < 0 or float(m.max()) > 1:
        raise InputFileError(path, "mask", "finite values in [0, 1]", "NaN, Inf or values outside [0, 1]")
    if not np.any(m):
        raise InputFileError(path, "mask", "at least one sampled location", "an all-zero mask")
    return m
