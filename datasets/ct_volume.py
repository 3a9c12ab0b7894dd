"""CT volumes in Hounsfield units: DICOM series and NIfTI in, NIfTI and DICOM series out.

In memory a :class:`CTVolume` is ``hu (slices, rows, cols)`` float32 plus a 4×4 ``affine`` that maps
voxel indices ``(i=col, j=row, k=slice)`` to RAS millimetres — exactly the affine nibabel gives for
the NIfTI written from it. DICOM geometry (LPS) is converted on the way in and back on the way out.
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import check_output_path
from ..errors import InputFileError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
# copied from the source series into a derived one (patient, study, frame of reference, equipment)
_CARRIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Manufacturer",
    "KVP",
    "BodyPartExamined",
    "PatientPosition",
)


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


def _dicom_files(paths: list[Path]) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    headers = []
    for f in paths:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            continue
        if "PixelData" not in ds and "ImagePositionPatient" not in ds:
            continue  # DICOMDIR and other non-image objects
        ds.filename = str(f)
        headers.append(ds)
    return headers


def read_dicom_series(path: Path | list[Path]) -> CTVolume:
    """Read one CT series: sort along the slice normal, rescale to HU, check consistency.

    Args:
        path: a folder (every DICOM file in it, not recursive) or an explicit list of files.

    Raises:
        InputFileError: no DICOM, a non-CT modality, two series in one folder, missing or
            duplicated slices, inconsistent spacing, orientation or matrix size.
    """
    import pydicom

    from .file_access import check_regular_file

    if isinstance(path, Path):
        folder = path
        files = sorted(q for q in path.iterdir() if q.is_file())  # regular files only: no pipes
    else:
        files = [check_regular_file(f, "a DICOM file") for f in path]
        folder = files[0]
    headers = _dicom_files(files)
    if not headers:
        raise InputFileError(folder, "DICOM", "at least one DICOM image", f"none among {len(files)} files")
    for ds in headers:
        if getattr(ds, "Modality", None) != "CT":
            raise InputFileError(ds.filename, "Modality", "'CT'", repr(getattr(ds, "Modality", None)))
        for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
            if tag not in ds:
                raise InputFileError(ds.filename, tag, "present (needed for geometry)", "missing")

    def series_key(ds) -> tuple:
        iop = tuple(np.round(np.asarray(ds.ImageOrientationPatient, float), 4))
        return (str(getattr(ds, "SeriesInstanceUID", "")), str(getattr(ds, "SeriesNumber", "")), iop, int(ds.Rows), int(ds.Columns))

    groups: dict[tuple, list] = {}
    for ds in headers:
        groups.setdefault(series_key(ds), []).append(ds)
    if len(groups) > 1:
        desc = "; ".join(f"series {k[0] or '?'} #{k[1] or '?'} {k[3]}x{k[4]}: {len(v)} files" for k, v in groups.items())
        raise InputFileError(folder, "series", "one CT series per folder", f"{len(groups)} mixed ({desc})")
    iop = np.asarray(headers[0].ImageOrientationPatient, dtype=np.float64)
    row_cos, col_cos = iop[:3], iop[3:]
    normal = np.cross(row_cos, col_cos)
    pos = np.array([np.asarray(ds.ImagePositionPatient, dtype=np.float64) for ds in headers])
    dist = pos @ normal
    order = np.argsort(dist)
    headers = [headers[i] for i in order]
    dist, pos = dist[order], pos[order]
    if len(headers) > 1:
        steps = np.diff(dist)
        if np.any(steps < 1e-3):
            i = int(np.argmin(steps))
            raise InputFileError(
                folder,
                "ImagePositionPatient",
                "one slice per position",
                f"duplicate position {dist[i]:.3f} mm ({Path(headers[i].filename).name}, {Path(headers[i + 1].filename).name})",
            )
        step = float(np.median(steps))
        bad = np.abs(steps - step) > max(0.01 * step, 1e-3)
        if np.any(bad):
            i = int(np.argmax(bad))
            if np.all(np.abs(steps[bad] / step - np.round(steps[bad] / step)) < 0.05):
                missing = int(round(steps[i] / step)) - 1
                got = f"{missing} missing slice(s) between {dist[i]:.2f} and {dist[i + 1]:.2f} mm"
                raise InputFileError(folder, "slices", f"a contiguous series with {step:.3f} mm spacing", got)
            raise InputFileError(
                folder, "slice spacing", f"constant {step:.3f} mm", f"{steps[i]:.3f} mm between {dist[i]:.2f} and {dist[i + 1]:.2f} mm"
            )
        slice_vec = (pos[-1] - pos[0]) / (len(headers) - 1)
    else:
        thick = float(getattr(headers[0], "SpacingBetweenSlices", getattr(headers[0], "SliceThickness", 1.0)) or 1.0)
        slice_vec = normal * thick
    ps = np.asarray(headers[0].PixelSpacing, dtype=np.float64)  # (row spacing, column spacing)
    lps = np.eye(4)
    lps[:3, 0] = row_cos * ps[1]
    lps[:3, 1] = col_cos * ps[0]
    lps[:3, 2] = slice_vec
    lps[:3, 3] = pos[0]
    hu = np.empty((len(headers), int(headers[0].Rows), int(headers[0].Columns)), dtype=np.float32)
    for k, h in enumerate(headers):
        ds = pydicom.dcmread(h.filename)
        try:
            arr = ds.pixel_array
        except Exception as err:  # decoder missing or corrupt pixel data
            raise InputFileError(h.filename, "PixelData", "decodable pixel data", f"{err.__class__.__name__}: {err}") from None
        hu[k] = arr * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    return CTVolume(hu, LPS_TO_RAS @ lps, str(folder), headers)


# -- writing --------------------------------------------------------------------------------------
def write_ct_nifti(vol: CTVolume, path: str | Path) -> Path:
    """NIfTI in HU (float32) with the volume's affine."""
    from .image_io import write_nifti

    return write_nifti(vol.hu, path, affine=vol.affine)


def write_dicom_series(
    hu: np.ndarray, affine: np.ndarray, out_dir: str | Path, reference: CTVolume | None = None, description: str = "medrecon reconstruction"
) -> Path:
    """Write a derived CT series (one file per slice) into a new folder ``out_dir``, atomically.

    Pixel data are int16 with ``RescaleSlope 1`` and ``RescaleIntercept -1024`` (HU rounded to the
    integer). Every file gets new SOP Instance UIDs and one new Series Instance UID; patient, study
    and frame-of-reference attributes are carried over from ``reference`` (when given), whose
    images are listed in ``SourceImageSequence``. ``ImageType`` is ``DERIVED\\SECONDARY\\AXIAL``.

    Raises:
        InputFileError: ``out_dir`` exists and is not empty, or its parent does not exist.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out = Path(out_dir)
    check_output_path(out.parent / (out.name + ".probe"))  # parent must exist
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputFileError(out, "output folder", "a new or empty folder for the DICOM series", "an existing non-empty path")
    hu = np.asarray(hu, dtype=np.float64)
    if hu.ndim != 3:
        raise ValueError(f"hu: expected (slices, rows, cols), got shape {hu.shape}")
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=np.float64)
    col_step, row_step, slice_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    col_sp, row_sp = float(np.linalg.norm(col_step)), float(np.linalg.norm(row_step))
    iop = np.concatenate([col_step / col_sp, row_step / row_sp])
    thickness = float(np.linalg.norm(slice_vec))
    series_uid = generate_uid()
    ref0 = reference.headers[0] if reference is not None and reference.headers else None
    now = datetime.datetime.now()
    stored = np.clip(np.round(hu + 1024.0), -32768, 32767).astype(np.int16)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for k in range(hu.shape[0]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            if ref0 is not None:
                for tag in _CARRIED:
                    if tag in ref0 and str(getattr(ref0, tag)) != "":
                        setattr(ds, tag, copy.deepcopy(getattr(ref0, tag)))
            if not str(getattr(ds, "StudyInstanceUID", "")):
                ds.StudyInstanceUID = generate_uid()  # the source had none (anonymised); a new study
            if not str(getattr(ds, "FrameOfReferenceUID", "")):
                ds.FrameOfReferenceUID = generate_uid()
            ds.SOPClassUID = CT_IMAGE_STORAGE
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = int(getattr(ref0, "SeriesNumber", 0) or 0) + 1000
            ds.SeriesDescription = description
            ds.Modality = "CT"
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.DerivationDescription = description
            ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [float(v) for v in (lps[:3, 3] + k * slice_vec)]
            ds.ImageOrientationPatient = [float(v) for v in iop]
            ds.PixelSpacing = [row_sp, col_sp]
            ds.SliceThickness = thickness
            ds.SpacingBetweenSlices = thickness
            ds.SliceLocation = float(np.dot(lps[:3, 3] + k * slice_vec, np.cross(iop[:3], iop[3:])))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = int(hu.shape[1]), int(hu.shape[2])
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
            ds.WindowCenter, ds.WindowWidth = 40, 400
            if reference is not None and k < len(reference.headers):
                src = Dataset()
                src.ReferencedSOPClassUID = str(getattr(reference.headers[k], "SOPClassUID", "") or CT_IMAGE_STORAGE)
                src.ReferencedSOPInstanceUID = str(getattr(reference.headers[k], "SOPInstanceUID", ""))
                if src.ReferencedSOPInstanceUID:
                    ds.SourceImageSequence = Sequence([src])
            ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
            ds.save_as(tmp / f"CT{k + 1:05d}.dcm", enforce_file_format=True)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
