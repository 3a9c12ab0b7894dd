"""Opening HDF5 and NIfTI files with one clear error for unreadable input."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFileError


def open_h5(path: Path):
    """``h5py.File(path, "r")``, or :class:`InputFileError` naming the file when it is not readable HDF5."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputFileError(path, "file", "a readable HDF5 file", f"unreadable ({err.__class__.__name__}: {err})") from None


def load_nifti_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D or 3-D NIfTI image as ``(slices, rows, cols)`` float32 plus its 4×4 affine.

    The file's ``(i, j, k)`` = ``(col, row, slice)`` axes are transposed to ``(k, j, i)``.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj).astype(np.float32)
    except Exception as err:  # nibabel raises several types for corrupt files
        raise InputFileError(path, "file", "a readable NIfTI image", f"unreadable ({err})") from None
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputFileError(path, "image", "a 2-D or 3-D volume", f"shape {data.shape}")
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0))), img.affine.copy()
