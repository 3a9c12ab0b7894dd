"""Modality-independent DICOM series reading and derived-series writing.

Reading (:func:`read_series_headers`, :func:`read_series_pixels`): collect the image headers of a
folder (or a list of files), refuse another modality or two series mixed in one folder, sort the
slices along the slice normal, check for duplicated or missing slices and uneven spacing, and build
the 4×4 affine that maps voxel indices ``(i=col, j=row, k=slice)`` to RAS millimetres (DICOM's LPS
converted). Pixels are rescaled slice by slice with each slice's own ``RescaleSlope`` and
``RescaleIntercept`` (PET slopes differ per slice).

Writing (:func:`write_derived_series`): the skeleton of a derived series — one file per slice in a
new folder written atomically (a temporary folder next to it, renamed on success), new SOP and
Series Instance UIDs, patient / study / frame-of-reference attributes carried over from a reference
series whose images are listed in ``SourceImageSequence``. The modality's own attributes (rescale,
units, window) come from a per-slice callback.

Also the DICOM date and time parsers (DA, TM, DT) the PET SUV conversion needs.
"""

from __future__ import annotations

import copy
import datetime
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_folder, check_output_path
from ..errors import InputFileError
from ..memory import check_allocation

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# copied from the source series into a derived one (patient, study, frame of reference, equipment)
IDENTIFIERS = ("PatientID", "PatientName", "StudyInstanceUID")  # what files a series into its patient's study
CARRIED_COMMON = (
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
    "BodyPartExamined",
    "PatientPosition",
)
_GEOMETRY_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


@dataclass
class SeriesHeaders:
    """One DICOM series' headers in slice order and its geometry.

    Attributes:
        folder: the folder read (or the first file when a list of files was given).
        headers: pydicom datasets without pixel data, sorted along the slice normal; each has
            ``filename`` set.
        affine: 4×4 float64 voxel ``(col, row, slice)`` → RAS mm.
    """

    folder: Path
    headers: list
    affine: np.ndarray


# -- reading --------------------------------------------------------------------------------------
def dicom_image_headers(paths: Sequence[Path]) -> list:
    """Headers (no pixel data) of the DICOM images among ``paths``; other files are skipped.

    Args:
        paths: candidate files; non-DICOM files, DICOMDIR and other non-image objects are ignored.

    Returns:
        pydicom datasets, in the order of ``paths``, each with ``filename`` set.
    """
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


def read_series_headers(path: Path | Sequence[Path], modality: str, label: str | None = None) -> SeriesHeaders:
    """Collect, check and sort the headers of one series of ``modality`` and build its affine.

    Args:
        path: a folder (every regular file in it, not recursive) or an explicit list of files.
        modality: the required DICOM ``Modality`` value (``"CT"``, ``"PT"``).
        label: the modality's name in messages (``"PET"``); ``modality`` when ``None``.

    Returns:
        The sorted headers and the RAS affine.

    Raises:
        InputFileError: no DICOM image, another modality, a geometry tag missing, two series in one
            folder, duplicated or missing slices, uneven spacing.
    """
    from .file_access import check_regular_file

    label = label or modality
    if isinstance(path, Path):
        folder = path
        files = sorted(q for q in path.iterdir() if q.is_file())  # regular files only: no pipes
    else:
        files = [check_regular_file(f, "a DICOM file") for f in path]
        folder = files[0]
    headers = dicom_image_headers(files)
    if not headers:
        raise InputFileError(folder, "DICOM", "at least one DICOM image", f"none among {len(files)} files")
    for ds in headers:
        if getattr(ds, "Modality", None) != modality:
            raise InputFileError(ds.filename, "Modality", repr(modality), repr(getattr(ds, "Modality", None)))
        for tag in _GEOMETRY_TAGS:
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
        raise InputFileError(folder, "series", f"one {label} series per folder", f"{len(groups)} mixed ({desc})")
    headers, lps = _sorted_geometry(folder, headers)
    return SeriesHeaders(folder, headers, LPS_TO_RAS @ lps)


def _sorted_geometry(folder: Path, headers: list) -> tuple[list, np.ndarray]:
    """Sort ``headers`` along the slice normal, check the spacing, and return them with the LPS affine."""
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
    return headers, lps


def read_series_pixels(headers: list) -> np.ndarray:
    """Read and rescale the pixels of sorted headers, each slice with its own slope and intercept.

    Args:
        headers: datasets with ``filename``, ``Rows`` and ``Columns`` (from :func:`read_series_headers`).

    Returns:
        ``(slices, rows, cols)`` float32: stored value × ``RescaleSlope`` + ``RescaleIntercept``.

    Raises:
        InputFileError: pixel data that cannot be decoded, or files × Rows × Columns larger than the memory budget.
    """
    import pydicom

    shape = (len(headers), int(headers[0].Rows), int(headers[0].Columns))
    source = Path(headers[0].filename) if len(headers) == 1 else Path(headers[0].filename).parent  # the file, or the series' folder
    check_allocation((shape, np.float32), source, "Rows × Columns × files", what="a volume")
    out = np.empty(shape, dtype=np.float32)
    for k, h in enumerate(headers):
        ds = pydicom.dcmread(h.filename)
        try:
            arr = ds.pixel_array
        except Exception as err:  # decoder missing or corrupt pixel data
            raise InputFileError(h.filename, "PixelData", "decodable pixel data", f"{err.__class__.__name__}: {err}") from None
        out[k] = arr * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    return out


# -- DICOM dates and times -------------------------------------------------------------------------
def parse_da(value) -> datetime.date:
    """A DICOM DA value (``YYYYMMDD``, or the old ``YYYY.MM.DD``) as a date; ValueError if malformed."""
    s = str(value).strip().replace(".", "")
    return datetime.date(int(s[0:4]), int(s[4:6]), int(s[6:8]))


def parse_tm(value) -> float:
    """A DICOM TM value (``HH[MM[SS[.FFFFFF]]]``, colons tolerated) as seconds after midnight."""
    s = str(value).strip().replace(":", "")
    if len(s) < 2 or not s[:2].isdigit():
        raise ValueError(f"not a DICOM time: {value!r}")
    hours = int(s[0:2])
    minutes = int(s[2:4]) if len(s) >= 4 else 0
    seconds = float(s[4:]) if len(s) > 4 else 0.0
    return hours * 3600.0 + minutes * 60.0 + seconds


def parse_dt(value) -> datetime.datetime:
    """A DICOM DT value (``YYYYMMDDHHMMSS.FFFFFF``, UTC offset ignored) as a naive datetime."""
    s = str(value).strip()
    for sign in "+-":
        if sign in s[8:]:
            s = s[: 8 + s[8:].index(sign)]
    day = datetime.datetime.combine(parse_da(s[:8]), datetime.time())
    return day + datetime.timedelta(seconds=parse_tm(s[8:]) if len(s) > 8 else 0.0)


# -- writing --------------------------------------------------------------------------------------
def check_new_series_folder(out_dir: str | Path) -> Path:
    """Check that ``out_dir`` can receive a new series: its parent exists, it is new or empty.

    Raises:
        InputFileError: the parent folder is missing, or ``out_dir`` exists and is not empty.
    """
    out = Path(out_dir)
    check_output_path(out.parent / (out.name + ".probe"))  # parent must exist
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputFileError(out, "output folder", "a new or empty folder for the DICOM series", "an existing non-empty path")
    return out


def write_derived_series(
    stored: np.ndarray,
    affine: np.ndarray,
    out_dir: str | Path,
    *,
    modality: str,
    sop_class_uid: str,
    image_type: Sequence[str],
    description: str,
    reference_headers: Sequence = (),
    carried: Sequence[str] = CARRIED_COMMON,
    slice_tags: Callable[[object, int], None] | None = None,
) -> Path:
    """Write a derived series (one file per slice) into a new folder ``out_dir``, atomically.

    The files go to a temporary folder in ``out_dir``'s parent, renamed to ``out_dir`` once all are
    written; on any failure the temporary folder is removed. Every file gets a new SOP Instance
    UID and all share one new Series Instance UID (series number = reference's + 1000); the
    ``carried`` attributes are copied from the first reference header, and slice ``k`` lists
    reference image ``k`` in ``SourceImageSequence``.

    Args:
        stored: ``(slices, rows, cols)`` int16 stored pixel values.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm.
        out_dir: the new series folder (must not exist, or be empty).
        modality: DICOM ``Modality`` (``"CT"``, ``"PT"``); also the file-name prefix.
        sop_class_uid: the storage SOP class of every file.
        image_type: ``ImageType`` values, e.g. ``("DERIVED", "SECONDARY")``.
        description: ``DerivationDescription`` (ST) and, cut to its 64-character limit (LO),
            ``SeriesDescription``.
        reference_headers: the source series' headers in slice order, or empty.
        carried: attribute keywords copied from the first reference header when present and non-empty.
        slice_tags: ``slice_tags(ds, k)`` sets the modality's own attributes of slice ``k``
            (rescale, units, …); called last, before the pixel data are set.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        InputFileError: ``out_dir`` exists and is not empty, or its parent does not exist.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out = check_new_series_folder(out_dir)
    stored = np.asarray(stored)
    if stored.ndim != 3 or stored.dtype != np.int16:
        raise ValueError(f"stored: expected (slices, rows, cols) int16, got shape {stored.shape} {stored.dtype}")
    lps = np.linalg.inv(LPS_TO_RAS) @ np.asarray(affine, dtype=np.float64)
    col_step, row_step, slice_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]
    col_sp, row_sp = float(np.linalg.norm(col_step)), float(np.linalg.norm(row_step))
    iop = np.concatenate([col_step / col_sp, row_step / row_sp])
    slice_spacing = float(np.linalg.norm(slice_vec))
    series_uid = generate_uid()
    ref0 = reference_headers[0] if len(reference_headers) else None
    gaps = [tag for tag in IDENTIFIERS if ref0 is not None and str(getattr(ref0, tag, "") or "") == ""]
    if gaps:  # an anonymised source: write what can be written, say what is missing
        print(f"note: {out}: the source series has no {', '.join(gaps)}; the derived series is written without them", file=sys.stderr)
    now = datetime.datetime.now()
    with atomic_folder(out) as tmp:
        for k in range(stored.shape[0]):
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = sop_class_uid
            meta.MediaStorageSOPInstanceUID = generate_uid()
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            if ref0 is not None:
                for tag in carried:
                    if tag in ref0 and str(getattr(ref0, tag)) != "":
                        setattr(ds, tag, copy.deepcopy(getattr(ref0, tag)))
            if not str(getattr(ds, "StudyInstanceUID", "")):
                ds.StudyInstanceUID = generate_uid()  # the source had none (anonymised); a new study
            if not str(getattr(ds, "FrameOfReferenceUID", "")):
                ds.FrameOfReferenceUID = generate_uid()
            ds.SOPClassUID = sop_class_uid
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = int(getattr(ref0, "SeriesNumber", 0) or 0) + 1000
            ds.SeriesDescription = description[:64]  # LO: 64 characters at most
            ds.Modality = modality
            ds.ImageType = list(image_type)
            ds.DerivationDescription = description
            ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
            ds.InstanceNumber = k + 1
            ds.ImagePositionPatient = [float(v) for v in (lps[:3, 3] + k * slice_vec)]
            ds.ImageOrientationPatient = [float(v) for v in iop]
            ds.PixelSpacing = [row_sp, col_sp]
            # the reconstructed slab is as thick as the source's slices (which may overlap: thickness > spacing)
            src_thickness = getattr(reference_headers[k], "SliceThickness", None) if k < len(reference_headers) else None
            ds.SliceThickness = float(src_thickness) if src_thickness not in (None, "") else slice_spacing
            ds.SpacingBetweenSlices = slice_spacing
            ds.SliceLocation = float(np.dot(lps[:3, 3] + k * slice_vec, np.cross(iop[:3], iop[3:])))
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = int(stored.shape[1]), int(stored.shape[2])
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
            if k < len(reference_headers):
                src = Dataset()
                src.ReferencedSOPClassUID = str(getattr(reference_headers[k], "SOPClassUID", "") or sop_class_uid)
                src.ReferencedSOPInstanceUID = str(getattr(reference_headers[k], "SOPInstanceUID", ""))
                if src.ReferencedSOPInstanceUID:
                    ds.SourceImageSequence = DicomSequence([src])
            if slice_tags is not None:
                slice_tags(ds, k)
            ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
            ds.save_as(tmp / f"{modality}{k + 1:05d}.dcm", enforce_file_format=True)
    return out
