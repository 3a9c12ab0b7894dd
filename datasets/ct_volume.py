"""CT volumes in Hounsfield units: DICOM series and NIfTI in, NIfTI and DICOM series out.

In memory a :class:`CTVolume` is ``hu (slices, rows, cols)`` float32 plus a 4×4 ``affine`` that maps
voxel indices ``(i=col, j=row, k=slice)`` to RAS millimetres — exactly the affine nibabel gives for
the NIfTI written from it. DICOM geometry (LPS) is converted on the way in and back on the way out. The series handling
shared with other modalities (sorting, geometry checks, derived-series writing) lives in
:mod:`medrecon.datasets.dicom_series`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .dicom_series import (
    CARRIED_COMMON,
    LPS_TO_RAS,
    check_new_series_folder,
    read_series_headers,
    read_series_pixels,
    write_derived_series,
)

__all__ = [
    "CT_IMAGE_STORAGE",
    "LPS_TO_RAS",
    "CTVolume",
    "read_ct",
    "read_dicom_series",
    "read_nifti_ct",
    "write_ct_nifti",
    "write_dicom_series",
]

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# copied from the source series into a derived CT one: the common set plus the tube voltage
_CARRIED = (*CARRIED_COMMON, "KVP")


@dataclass
class CTVolume:
    """A CT volume in HU with its geometry.

    Attributes:
        hu: ``(slices, rows, cols)`` float32 Hounsfield units.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm.
        source: where it came from (folder or file).
        headers: the source DICOM headers in slice order (no pixel data), or empty.
    """

    hu: np.ndarray
    affine: np.ndarray
    source: str = ""
    headers: list = field(default_factory=list)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """``(slice, row, col)`` spacing in mm (lengths of the affine's columns)."""
        col, row, sl = np.linalg.norm(self.affine[:3, :3], axis=0)
        return float(sl), float(row), float(col)


# -- reading --------------------------------------------------------------------------------------
def read_ct(path: str | Path) -> CTVolume:
    """Read a DICOM CT series folder, a single DICOM file, or a NIfTI volume (assumed in HU)."""
    from .file_access import check_regular_file

    p = Path(path)
    if p.is_dir():
        return read_dicom_series(p)
    if not p.exists():
        raise InputFileError(p, "file", "an existing DICOM folder, DICOM file or NIfTI", "no such file or folder")
    check_regular_file(p, "a DICOM folder, DICOM file or NIfTI")
    if p.name.lower().endswith((".nii", ".nii.gz")):
        return read_nifti_ct(p)
    return read_dicom_series([p])


def read_nifti_ct(path: str | Path) -> CTVolume:
    """A NIfTI volume in HU → :class:`CTVolume` (data transposed to ``(slices, rows, cols)``)."""
    from .file_access import load_nifti_volume

    p = Path(path)
    hu, affine = load_nifti_volume(p)
    if not np.all(np.isfinite(hu)):
        raise InputFileError(p, "image", "finite HU values", "NaN or Inf")
    return CTVolume(hu, affine, str(p))


def read_dicom_series(path: Path | list[Path]) -> CTVolume:
    """Read one CT series: sort along the slice normal, rescale to HU, check consistency.

    Args:
        path: a folder (every DICOM file in it, not recursive) or an explicit list of files.

    Raises:
        InputFileError: no DICOM, a non-CT modality, two series in one folder, missing or
            duplicated slices, inconsistent spacing, orientation or matrix size.
    """
    series = read_series_headers(path, "CT")
    hu = read_series_pixels(series.headers)
    return CTVolume(hu, series.affine, str(series.folder), series.headers)


# -- writing --------------------------------------------------------------------------------------
def write_ct_nifti(vol: CTVolume, path: str | Path) -> Path:
    """NIfTI in HU (float32) with the volume's affine."""
    from .image_io import write_nifti

    return write_nifti(vol.hu, path, affine=vol.affine)


def write_dicom_series(
    hu: np.ndarray, affine: np.ndarray, out_dir: str | Path, reference_headers: Sequence = (), description: str = "medrecon reconstruction"
) -> Path:
    """Write a derived CT series (one file per slice) into a new folder ``out_dir``, atomically.

    Pixel data are int16 with ``RescaleSlope 1`` and ``RescaleIntercept -1024`` (HU rounded to the
    integer). Every file gets new SOP Instance UIDs and one new Series Instance UID; patient, study
    and frame-of-reference attributes are carried over from the source series' headers
    ``reference_headers`` (when given, in slice order: a :class:`CTVolume`'s, or for a synthetic CT
    the MR's or PET's), whose images are listed in ``SourceImageSequence``. ``ImageType`` is ``DERIVED\\SECONDARY\\AXIAL``.

    Raises:
        InputFileError: ``out_dir`` exists and is not empty, or its parent does not exist.
    """
    out = check_new_series_folder(out_dir)
    hu = np.asarray(hu, dtype=np.float64)
    if hu.ndim != 3:
        raise ValueError(f"hu: expected (slices, rows, cols), got shape {hu.shape}")
    stored = np.clip(np.round(hu + 1024.0), -32768, 32767).astype(np.int16)

    def ct_tags(ds, k: int) -> None:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400

    return write_derived_series(
        stored,
        affine,
        out,
        modality="CT",
        sop_class_uid=CT_IMAGE_STORAGE,
        image_type=("DERIVED", "SECONDARY", "AXIAL"),
        description=description,
        reference_headers=reference_headers,
        carried=_CARRIED,
        slice_tags=ct_tags,
    )
