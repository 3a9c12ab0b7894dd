"""Opening input files with one clear error for unreadable input.

Every reader opens its files through :func:`check_regular_file` (directly, or through
:func:`open_h5` / :func:`load_nifti_volume`): a named pipe, socket or device given as an input
would otherwise block the reader forever or stream endless data.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from ..errors import InputFileError

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_regular_file(path: str | Path, expected: str = "an existing file") -> Path:
    """Check that ``path`` is a regular file (symbolic links followed) before anything opens it.

    Args:
        path: the input file.
        expected: what the caller reads there, for the message (``"an existing sinogram .h5"``).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputFileError: missing, not accessible, or not a regular file (a folder, named pipe,
            socket or device).
    """
    p = Path(path)
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise InputFileError(p, "file", expected, "no such file") from None
    except OSError as err:
        raise InputFileError(p, "file", expected, f"not accessible ({err.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "a special file")
        raise InputFileError(p, "file", f"{expected} (a regular file)", kind)
    return p


def open_h5(path: Path):
    """``h5py.File(path, "r")``, or :class:`InputFileError` naming the file when it is not readable HDF5."""
    import h5py

    check_regular_file(path, "a readable HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputFileError(path, "file", "a readable HDF5 file", f"unreadable ({err.__class__.__name__}: {err})") from None


def load_nifti_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D or 3-D NIfTI image as ``(slices, rows, cols)`` float32 plus its 4×4 affine.

    The file's ``(i, j, k)`` = ``(col, row, slice)`` axes are transposed to ``(k, j, i)``.
    """
    import nibabel as nib

    check_regular_file(path, "a readable NIfTI image")
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
