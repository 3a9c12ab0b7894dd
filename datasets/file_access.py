"""Opening input files with one clear error for unreadable input.

Every reader opens its files through :func:`check_regular_file` (directly, or through
:func:`open_h5` / :func:`load_nifti_volume`): a named pipe, socket or device given as an input
would otherwise block the reader forever or stream endless data. Arrays are read through
:func:`read_dataset` (HDF5), :func:`check_npz` (before ``np.load``) or :func:`load_nifti_volume`,
which check the shapes the file declares against the memory budget (:mod:`medrecon.memory`) first.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..memory import check_allocation

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
        img = nib.load(str(path))  # the header only; the data stay on disk
        stored = np.dtype(img.get_data_dtype())
        scaled = getattr(img.dataobj, "slope", 1.0) != 1.0 or getattr(img.dataobj, "inter", 0.0) != 0.0
    except Exception as err:  # nibabel raises several types for corrupt files
        raise InputFileError(path, "file", "a readable NIfTI image", f"unreadable ({err})") from None
    # the values as read (float64 when the header scales them), their float32 copy and the transposed copy
    check_allocation((img.shape, np.float64 if scaled else stored), path, "dim", working=(np.float32, np.float32), what="an image")
    try:
        data = np.asanyarray(img.dataobj).astype(np.float32)
    except Exception as err:
        raise InputFileError(path, "file", "a readable NIfTI image", f"unreadable ({err})") from None
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise InputFileError(path, "image", "a 2-D or 3-D volume", f"shape {data.shape}")
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0))), img.affine.copy()


def h5_dataset(path: Path, f, key: str, expected: str):
    """``f[key]`` of an open HDF5 file, or :class:`InputFileError` when it is missing or a group (``expected`` names what is read there)."""
    import h5py

    if key not in f:
        raise InputFileError(path, key, expected, f"keys {sorted(f.keys())}")
    node = f[key]
    if not isinstance(node, h5py.Dataset):
        raise InputFileError(path, key, expected, f"an HDF5 {type(node).__name__.lower()}")
    return node


def read_dataset(path: Path, ds, field: str, dtype=None) -> np.ndarray:
    """``ds[()]`` of an open h5py dataset (as ``dtype`` when given), once its declared shape fits the memory budget.

    Raises:
        InputFileError: ``ds`` is a group, not a dataset; its values are not numbers (text, compound)
            or are complex where ``dtype`` is real; it is larger than the memory budget.
    """
    import h5py

    if not isinstance(ds, h5py.Dataset):
        raise InputFileError(path, field, "an HDF5 dataset", f"an HDF5 {type(ds).__name__.lower()}")
    if dtype is not None:
        numeric = np.issubdtype(ds.dtype, np.number) or np.issubdtype(ds.dtype, np.bool_)
        complex_to_real = np.issubdtype(ds.dtype, np.complexfloating) and not np.issubdtype(np.dtype(dtype), np.complexfloating)
        if not numeric or complex_to_real:
            raise InputFileError(path, field, "real numbers" if complex_to_real else "numbers", f"dtype {ds.dtype}")
    working = () if dtype is None or np.dtype(dtype) == ds.dtype else (dtype,)
    check_allocation((ds.shape, ds.dtype), path, field, working=working)
    arr = ds[()]
    return arr if dtype is None else np.asarray(arr, dtype=dtype)


def check_npz(path: Path, expected: str, keys: Sequence[str] | None = None, dtype=None) -> None:
    """Check the arrays ``keys`` (all when ``None``) of an ``.npz`` against the memory budget, from their headers.

    Nothing is loaded: each member's ``.npy`` header gives its shape and dtype (``dtype``: the
    reader converts to it, a working copy). Keys the archive lacks are left to the reader.

    Raises:
        InputFileError: not a zip archive or an unreadable header (``expected`` names the file kind),
            or an array larger than the budget.
    """
    check_regular_file(path, expected)
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if keys is not None and key not in keys:
                    continue
                if not info.filename.endswith(".npy"):  # np.load returns such members as raw bytes
                    check_allocation(info.file_size, path, key)
                    continue
                with z.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, stored = read(fp)
                working = () if dtype is None or np.dtype(dtype) == stored else (dtype,)
                check_allocation((shape, stored), path, key, working=working)
    except InputFileError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputFileError(path, "file", expected, f"unreadable ({err})") from None
