"""Open any supported raw MRI file by looking at its content (not only its name)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError
from .kspace_source import KSpaceSource


def open_kspace(path: str | Path, echo: int = 0) -> KSpaceSource:
    """Open fastMRI (single/multi-coil), SKM-TEA or ISMRMRD ``.h5``, or ``.npz`` k-space.

    HDF5 files with ISMRMRD's ``/dataset`` (and no ``kspace``) are read as ISMRMRD raw data, those
    whose ``kspace`` has rank 5 as SKM-TEA, others as fastMRI.

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
        from .ismrmrd_raw import is_ismrmrd

        with open_h5(p) as f:
            rank = f["kspace"].ndim if "kspace" in f and hasattr(f["kspace"], "ndim") else None
            ismrmrd = is_ismrmrd(f)
        if ismrmrd:
            from .ismrmrd_raw import ISMRMRDFile

            return ISMRMRDFile(p)
        if rank == 5:
            from .skmtea import SKMTEAFile

            return SKMTEAFile(p, echo=echo)
        from .fastmri import FastMRIFile

        return FastMRIFile(p)
    raise InputFileError(p, "file type", "a .h5 (fastMRI / SKM-TEA / ISMRMRD) or .npz k-space file", f"suffix {p.suffix!r}")
