"""Where reconstructions go: a NIfTI file or a new DICOM series folder, the std beside the mean, no half results.

Shared by the tasks that write image volumes (CT, PET): the output is checked before any work
(a ``.nii`` / ``.nii.gz`` file, or a new or empty folder for a DICOM series; never one of the
inputs), the std of a diffusion reconstruction goes to ``NAME_std.nii.gz`` or ``FOLDER_std/``, a
non-finite or all-zero result is refused instead of written, and when writing the second of the
two fails, the first is removed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputFileError


def check_volume_output(out: str | Path, inputs: Sequence[tuple[str, str | None]]) -> tuple[Path, bool]:
    """Validate the output before any work; returns ``(out, as_dicom)``.

    A path given ending in ``/`` (the option's text, before it becomes a :class:`~pathlib.Path`),
    an existing folder or a name without suffix is a DICOM series folder (new or empty); otherwise
    a NIfTI file.
    """
    from ..atomic import check_not_an_input, check_output_path

    as_dicom = str(out).endswith(("/", os.sep)) or Path(out).is_dir() or Path(out).suffix == ""
    out = Path(out)
    check_not_an_input(out, inputs)
    if as_dicom:
        if out.exists() and not out.is_dir():
            raise InputFileError(out, "output folder", "a new or empty folder for the DICOM series", "an existing file")
        if out.exists() and any(out.iterdir()):
            raise InputFileError(out, "output folder", "a new or empty folder for the DICOM series", "an existing non-empty folder")
        check_output_path(out.parent / "probe")
    elif not out.name.lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(out, "output", "a .nii / .nii.gz file or a folder (DICOM series)", repr(out.name))
    else:
        check_output_path(out)
    check_std_output(out, as_dicom)  # a std may follow the run: its path is checked now, not after the work
    return out, as_dicom


def std_path(out: Path, as_dicom: bool) -> Path:
    """Where the std goes: ``NAME_std.nii.gz`` beside a NIfTI, ``FOLDER_std/`` beside a DICOM series."""
    if as_dicom:
        return out.with_name(out.name + "_std")
    name = out.name
    base = name[:-7] if name.lower().endswith(".nii.gz") else name[:-4]
    return out.with_name(base + "_std" + name[len(base) :])


def check_std_output(out: Path, as_dicom: bool) -> Path:
    """The std's path, under the mean's rule: a NIfTI file is replaced as the mean is; a series folder must be new or empty."""
    path = std_path(out, as_dicom)
    if as_dicom and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputFileError(path, "std output", "a new or empty folder for the std series", "an existing file or non-empty folder")
    if not as_dicom and path.is_dir():
        raise InputFileError(path, "std output", "a file name for the std beside the mean", "an existing folder")
    return path


def check_result(volume, source: str | Path, what: str = "reconstruction") -> None:
    """Refuse to write a result with NaN / Inf voxels, or one that is all zero (exit 2, nothing written).

    Both come from inputs that cannot be reconstructed (an all-zero or NaN mask, data the method
    cannot use), and a file of them would pass silently down an unattended pipeline.
    """
    arr = np.asarray(volume)
    bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise InputFileError(source, what, "finite values", f"NaN or Inf in {bad} of {arr.size} voxels; nothing written")
    if not np.any(arr):
        raise InputFileError(source, what, "a result that is not all zero", "all zero (no usable measurements?); nothing written")


def write_mean_and_std(
    mean: np.ndarray,
    std: np.ndarray | None,
    out: Path,
    as_dicom: bool,
    write: Callable[[np.ndarray, Path, str], None],
    source: str | Path,
) -> Path | None:
    """``write(volume, path, what)`` the std (if any) and then the mean; on failure remove what was written.

    The mean is checked first (:func:`check_result`; ``source`` names the input in the error).
    Returns the std's path, or None.
    """
    check_result(mean, source)
    spath = None if std is None else check_std_output(out, as_dicom)
    written: list[Path] = []
    try:
        for vol, path, what in ((std, spath, " std"), (mean, out, "")):
            if vol is None:
                continue
            write(vol, path, what)
            written.append(path)
    except BaseException:
        for path in written:  # no half of a result
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        raise
    return spath
