"""Open any supported raw MRI file by looking at its content (not only its name)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError
from .kspace_source import KSpaceSource


def open_kspace(path: str | Path, echo: int = 0) -> KSpaceSource:
    """Open fastMRI (single/multi-coil) or SKM-TEA ``.h5``, or ``.npz`` k-space.

    HDF5 files whose ``kspace`` has rank 5 are read as SKM-TEA, others as fastMRI.

    Raises:
        InputFileError: missing file, unknown suffix, or any layout problem the readers find.
    """
    from .file_access import check_regular_file

    p = check_regular_file(path, "an existing file")
    if p.suffix == ".npz":
        from .npz_kspace import NpzKSpace

        return NpzKSpace(p)
    if p.suffix in (".h5", ".hdf5"):
        from .file_access import open_h5

        with open_h5(p) as f:
            rank = f["kspace"].ndim if "kspace" in f and hasattr(f["kspace"], "ndim") else None
        if rank == 5:
            from .skmtea import SKMTEAFile

            return SKMTEAFile(p, echo=echo)
        from .fastmri import FastMRIFile

        return FastMRIFile(p)
    raise InputFileError(p, "file type", "a .h5 (fastMRI / SKM-TEA) or .npz k-space file", f"suffix {p.suffix!r}")
