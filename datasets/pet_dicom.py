"""PET volumes: DICOM series (Bq/ml or SUV) and NIfTI in; DICOM series and NIfTI out; SUVbw.

In memory a :class:`PETVolume` is ``values (slices, rows, cols)`` float32 plus a 4×4 ``affine``
mapping voxel indices ``(i=col, j=row, k=slice)`` to RAS millimetres (the convention of
:class:`~medrecon.datasets.ct_volume.CTVolume`), the ``unit`` the values are in (``"BQML"``:
activity concentration in Bq/ml; ``"SUVbw"``: body-weight standardised uptake value, g/ml) and the
``suv_factor`` with SUVbw = Bq/ml × ``suv_factor`` (``None`` when it cannot be computed).

SUVbw = C (Bq/ml) × PatientWeight (kg) × 1000 / D, where D is the injected dose (Bq) decayed to the
time the image activity is corrected to: for ``DecayCorrection`` ``START`` from the injection time
to the series start, D = dose × 2^(−Δt / T½); for ``ADMIN`` D = dose; ``NONE`` is refused. Series
handling (sorting, geometry, derived-series writing) is :mod:`medrecon.datasets.dicom_series`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, InputFileError
from .dicom_series import (
    CARRIED_COMMON,
    check_new_series_folder,
    parse_da,
    parse_dt,
    parse_tm,
    read_series_headers,
    read_series_pixels,
    write_derived_series,
)

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
UNITS = ("BQML", "SUVbw")
_READ_UNITS = (*UNITS, "as-stored")
# copied from the source series into a derived PET one, so that it re-reads with the same SUV
_CARRIED_PET = (
    *CARRIED_COMMON,
    "PatientWeight",
    "PatientSize",
    "RadiopharmaceuticalInformationSequence",
    "DecayCorrection",
    "CorrectedImage",
    "SeriesType",
    "CountsSource",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
)
_NEEDED = "present (needed for SUV)"
_NIFTI_TAG = "medrecon PET unit="


@dataclass
class PETVolume:
    """A PET volume with its geometry and unit.

    Attributes:
        values: ``(slices, rows, cols)`` float32 in ``unit``.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm.
        unit: ``"BQML"`` (Bq/ml) or ``"SUVbw"`` (body-weight SUV).
        suv_factor: SUVbw = Bq/ml × ``suv_factor`` (ml⁻¹·g/Bq), or ``None`` when unknown.
        source: where it came from (folder or file).
        headers: the source DICOM headers in slice order (no pixel data), or empty.
    """

    values: np.ndarray
    affine: np.ndarray
    unit: str
    suv_factor: float | None = None
    source: str = ""
    headers: list = field(default_factory=list)


def _check_unit(unit: str, allowed: tuple[str, ...]) -> str:
    if unit not in allowed:
        raise ArgumentError(f"unit: expected one of {', '.join(allowed)}, got {unit!r}")
    return unit


# -- reading --------------------------------------------------------------------------------------
def read_pet(path: str | Path, unit: str = "SUVbw") -> PETVolume:
    """Read a PET DICOM series folder, a single PET DICOM file, or a NIfTI volume.

    DICOM pixels are rescaled per slice (``RescaleSlope`` / ``RescaleIntercept``). Stored ``Units``
    ``BQML`` are converted to SUVbw when asked; ``GML`` series already hold SUVbw. NIfTI values
    are taken as they are, in the unit recorded by :func:`write_pet_nifti` (``descrip``) or, for
    other files, the ``unit`` given; no conversion is possible there (``suv_factor`` is ``None``).

    Args:
        path: a DICOM folder or file, or a ``.nii`` / ``.nii.gz`` file.
        unit: ``"SUVbw"``, ``"BQML"`` or ``"as-stored"`` (the series' own unit, no conversion).
            Only a conversion needs the SUV tags; ``suv_factor`` is otherwise filled when they
            allow it and ``None`` when not.

    Returns:
        The volume with values in the unit asked for.

    Raises:
        ArgumentError: an unknown ``unit``.
        InputFileError: see :func:`read_pet_dicom_series`; for NIfTI, an unreadable file, NaN or
            Inf, or a ``descrip`` unit that differs from ``unit``.
    """
    from .file_access import check_regular_file

    _check_unit(unit, _READ_UNITS)
    p = Path(path)
    if p.is_dir():
        return read_pet_dicom_series(p, unit)
    if not p.exists():
        raise InputFileError(p, "file", "an existing DICOM folder, DICOM file or NIfTI", "no such file or folder")
    check_regular_file(p, "a DICOM folder, DICOM file or NIfTI")
    if p.name.lower().endswith((".nii", ".nii.gz")):
        return read_pet_nifti(p, unit)
    return read_pet_dicom_series([p], unit)


def read_pet_nifti(path: str | Path, unit: str = "as-stored") -> PETVolume:
    """A NIfTI PET volume → :class:`PETVolume`, values as stored.

    Args:
        path: ``.nii`` / ``.nii.gz`` file, ``(cols, rows, slices)`` on disk.
        unit: ``"BQML"`` or ``"SUVbw"`` (what the values are in), or ``"as-stored"`` to take the
            unit from the ``descrip`` field :func:`write_pet_nifti` writes.

    Raises:
        InputFileError: unreadable, NaN or Inf values, no unit recorded for ``"as-stored"``, or a
            recorded unit other than ``unit``.
    """
    import nibabel as nib

    from .file_access import load_nifti_volume

    _check_unit(unit, _READ_UNITS)
    p = Path(path)
    values, affine = load_nifti_volume(p)
    descrip = nib.load(str(p)).header["descrip"].tobytes().split(b"\0")[0].decode("ascii", "replace")
    recorded = (descrip[len(_NIFTI_TAG) :].strip() or None) if descrip.startswith(_NIFTI_TAG) else None
    if unit == "as-stored":
        if recorded not in UNITS:
            raise InputFileError(
                p, "descrip", f"a recorded unit ({' or '.join(UNITS)}) or an explicit unit argument", f"descrip {descrip!r}"
            )
        unit = recorded
    elif recorded is not None and recorded != unit:
        raise InputFileError(p, "descrip", f"unit {unit} (NIfTI values cannot be converted)", f"unit {recorded}")
    if not np.all(np.isfinite(values)):
        raise InputFileError(p, "image", "finite values", "NaN or Inf")
    return PETVolume(values, affine, unit, None, str(p))


def read_pet_dicom_series(path: Path | list[Path], unit: str = "SUVbw") -> PETVolume:
    """Read one PET series (Modality ``PT``) in Bq/ml or SUVbw.

    The series start for decay correction ``START`` is ``SeriesDate`` / ``SeriesTime``; when
    ``SeriesTime`` is missing the earliest ``AcquisitionTime`` of the series is used instead. The
    injection time is ``RadiopharmaceuticalStartDateTime``, else ``RadiopharmaceuticalStartTime``
    on the series day.

    Args:
        path: a folder (every DICOM file in it, not recursive) or an explicit list of files.
        unit: ``"SUVbw"``, ``"BQML"`` or ``"as-stored"``.

    Raises:
        InputFileError: no DICOM, a modality other than ``PT``, two series in one folder, missing
            or duplicated slices, uneven spacing; ``Units`` other than ``BQML`` / ``GML``; for a
            conversion, a missing SUV tag (named), ``DecayCorrection`` ``NONE``, a non-positive
            weight, dose or half-life, or an injection after the series start.
    """
    _check_unit(unit, _READ_UNITS)
    series = read_series_headers(path, "PT", "PET")
    h0 = series.headers[0]
    stored_units = str(getattr(h0, "Units", "") or "").upper()
    if stored_units not in ("BQML", "GML", ""):
        raise InputFileError(h0.filename, "Units", "BQML or GML (activity concentration or SUVbw)", repr(stored_units))
    if not stored_units:
        if unit == "SUVbw":
            raise InputFileError(h0.filename, "Units", _NEEDED, "missing")
        stored_units = "BQML"  # no Units tag: taken as Bq/ml, which is all that was asked
    have = "BQML" if stored_units == "BQML" else "SUVbw"
    want = have if unit == "as-stored" else unit
    factor, problem = suv_factor(series.headers)
    if want != have and problem is not None:
        raise problem  # only a conversion needs the SUV tags
    values = read_series_pixels(series.headers)
    if want != have:
        values = (values * factor if want == "SUVbw" else values / factor).astype(np.float32)
    return PETVolume(values, series.affine, want, factor, str(series.folder), series.headers)


def reference_from_headers(headers: list, affine: np.ndarray, source: str = "") -> PETVolume:
    """A reference for :func:`write_pet_dicom_series` from a series' headers alone (no pixels): its
    stored unit (``GML`` → SUVbw, else Bq/ml) and SUV factor (None when its tags are incomplete)."""
    stored = str(getattr(headers[0], "Units", "") or "").upper()
    return PETVolume(
        np.zeros((0, 0, 0), np.float32), affine, "SUVbw" if stored == "GML" else "BQML", suv_factor(headers)[0], source, list(headers)
    )


def suv_factor(headers: list) -> tuple[float | None, InputFileError | None]:
    """The SUVbw factor of a PET series (SUVbw = Bq/ml × factor), or why it cannot be computed.

    Args:
        headers: the series' headers in slice order (the first one names the file in errors).

    Returns:
        ``(factor, None)``, or ``(None, error)`` with the :class:`InputFileError` that a
        conversion to or from SUV raises.
    """
    h0 = headers[0]
    f = h0.filename

    def missing(tag: str) -> tuple[None, InputFileError]:
        return None, InputFileError(f, tag, _NEEDED, "missing")

    weight = getattr(h0, "PatientWeight", None)
    if weight is None or str(weight).strip() == "":
        return missing("PatientWeight")
    if not float(weight) > 0:
        return None, InputFileError(f, "PatientWeight", "a positive weight in kg", str(weight))
    seq = getattr(h0, "RadiopharmaceuticalInformationSequence", None)
    if not seq:
        return missing("RadiopharmaceuticalInformationSequence")
    rp = seq[0]
    dose = getattr(rp, "RadionuclideTotalDose", None)
    if dose is None or str(dose).strip() == "":
        return missing("RadionuclideTotalDose")
    if not float(dose) > 0:
        return None, InputFileError(f, "RadionuclideTotalDose", "a positive injected dose in Bq", str(dose))
    correction = str(getattr(h0, "DecayCorrection", "") or "").upper()
    if not correction:
        return missing("DecayCorrection")
    if correction == "ADMIN":
        return float(weight) * 1000.0 / float(dose), None
    if correction != "START":
        why = "NONE (activity not decay corrected: no SUV)" if correction == "NONE" else repr(correction)
        return None, InputFileError(f, "DecayCorrection", "START or ADMIN (needed for SUV)", why)
    half_life = getattr(rp, "RadionuclideHalfLife", None)
    if half_life is None or str(half_life).strip() == "":
        return missing("RadionuclideHalfLife")
    if not float(half_life) > 0:
        return None, InputFileError(f, "RadionuclideHalfLife", "a positive half-life in s", str(half_life))
    elapsed, problem = _injection_to_start_s(headers, rp)
    if problem is not None:
        return None, problem
    decayed = float(dose) * 2.0 ** (-elapsed / float(half_life))
    return float(weight) * 1000.0 / decayed, None


def series_start_time(headers: list) -> str | None:
    """``SeriesTime`` of the first header, else the earliest ``AcquisitionTime`` (TM strings), else ``None``."""
    st = str(getattr(headers[0], "SeriesTime", "") or "").strip()
    if st:
        return st
    times = [str(getattr(h, "AcquisitionTime", "") or "").strip() for h in headers]
    times = [t for t in times if t]
    return min(times, key=parse_tm) if times else None


def _injection_to_start_s(headers: list, rp) -> tuple[float, InputFileError | None]:
    """Seconds from injection to series start, or the error saying why they are unknown."""
    h0 = headers[0]
    f = h0.filename
    start_tm = series_start_time(headers)
    if start_tm is None:
        return 0.0, InputFileError(f, "SeriesTime", "present, or AcquisitionTime (needed for SUV)", "missing")
    start_da = str(getattr(h0, "SeriesDate", "") or getattr(h0, "AcquisitionDate", "") or "").strip()
    inj_dt = str(getattr(rp, "RadiopharmaceuticalStartDateTime", "") or "").strip()
    inj_tm = str(getattr(rp, "RadiopharmaceuticalStartTime", "") or "").strip()
    try:
        start = parse_tm(start_tm)
        if inj_dt and start_da and len(inj_dt) >= 8:
            start_abs = parse_dt(parse_da(start_da).strftime("%Y%m%d") + start_tm.replace(":", ""))
            elapsed = (start_abs - parse_dt(inj_dt)).total_seconds()
            injected, tag = inj_dt, "RadiopharmaceuticalStartDateTime"
        elif inj_tm or inj_dt:
            injected, tag = (inj_tm, "RadiopharmaceuticalStartTime") if inj_tm else (inj_dt[8:], "RadiopharmaceuticalStartDateTime")
            elapsed = start - parse_tm(injected)
        else:
            return 0.0, InputFileError(f, "RadiopharmaceuticalStartTime", _NEEDED, "missing")
    except (ValueError, IndexError) as err:
        return 0.0, InputFileError(f, "series / injection time", "valid DICOM dates and times", str(err))
    if elapsed < 0:
        return 0.0, InputFileError(f, tag, f"an injection before the series start ({start_tm})", injected)
    return elapsed, None


# -- writing --------------------------------------------------------------------------------------
def write_pet_dicom_series(
    values: np.ndarray,
    affine: np.ndarray,
    out_dir: str | Path,
    reference: PETVolume | None = None,
    unit: str | None = None,
    description: str = "medrecon reconstruction",
) -> Path:
    """Write a derived PET series (one file per slice) into a new folder ``out_dir``, atomically.

    Pixels are int16 with ``RescaleIntercept 0`` and a per-slice ``RescaleSlope`` = slice max |v|
    / 32767, so small values keep their precision. Values are stored as ``Units BQML`` — SUVbw
    values divided by the reference's ``suv_factor`` — or, for SUVbw without a factor, as ``GML``.
    The radiopharmaceutical, weight, decay-correction and series date/time tags are copied from
    ``reference`` so the series re-reads with the same SUV; patient, study and frame of reference
    too. SOP class PET Image Storage, ``ImageType`` ``DERIVED\\SECONDARY``. The files are written
    to a temporary folder next to ``out_dir`` and renamed on success; a failure leaves nothing.

    Args:
        values: ``(slices, rows, cols)`` real values in ``unit``.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm.
        out_dir: the new series folder (must not exist, or be empty; its parent must exist).
        reference: the source series (its headers and ``suv_factor``), or ``None``.
        unit: ``"BQML"`` or ``"SUVbw"``; ``None`` takes the reference's unit.
        description: ``SeriesDescription`` and ``DerivationDescription``.

    Returns:
        ``out_dir`` as a :class:`~pathlib.Path`.

    Raises:
        InputFileError: ``out_dir`` exists and is not empty, or its parent does not exist.
        ArgumentError: no ``unit`` and no reference, or an unknown unit.
        ValueError: ``values`` not 3-D or not finite.
    """
    from pydicom.valuerep import DSfloat

    if unit is None:
        if reference is None:
            raise ArgumentError("unit: expected BQML or SUVbw when no reference is given, got None")
        unit = reference.unit
    _check_unit(unit, UNITS)
    out = check_new_series_folder(out_dir)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 3:
        raise ValueError(f"values: expected (slices, rows, cols), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("values: expected finite values, got NaN or Inf")
    factor = reference.suv_factor if reference is not None else None
    if unit == "SUVbw" and factor is not None:
        v, units = v / factor, "BQML"
    else:
        units = "BQML" if unit == "BQML" else "GML"
    peak = np.abs(v).reshape(v.shape[0], -1).max(axis=1)
    slopes = [float(DSfloat(p / 32767.0, auto_format=True)) if p > 0 else 1.0 for p in peak]
    stored = np.stack([np.clip(np.round(v[k] / s), -32767, 32767) for k, s in enumerate(slopes)]).astype(np.int16)
    ref_headers = reference.headers if reference is not None else []
    start_tm = series_start_time(ref_headers) if ref_headers else None

    def pet_tags(ds, k: int) -> None:
        ds.Units = units
        ds.RescaleSlope = DSfloat(slopes[k], auto_format=True)
        ds.RescaleIntercept = 0
        if "SeriesType" not in ds:
            ds.SeriesType = ["STATIC", "IMAGE"]
        if start_tm is not None:
            ds.SeriesTime = start_tm  # the reference's start, even where it came from AcquisitionTime
            ds.AcquisitionTime = str(getattr(ref_headers[min(k, len(ref_headers) - 1)], "AcquisitionTime", "") or start_tm)

    return write_derived_series(
        stored,
        affine,
        out,
        modality="PT",
        sop_class_uid=PET_IMAGE_STORAGE,
        image_type=("DERIVED", "SECONDARY"),
        description=description,
        reference_headers=ref_headers,
        carried=_CARRIED_PET,
        slice_tags=pet_tags,
    )


def write_pet_nifti(vol_or_values: PETVolume | np.ndarray, affine: np.ndarray | None, path: str | Path, unit: str | None = None) -> Path:
    """Write a PET volume as float32 NIfTI, atomically, with its unit in the header's ``descrip``.

    Args:
        vol_or_values: a :class:`PETVolume`, or ``(slices, rows, cols)`` real values.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm; ``None`` takes the volume's.
        path: ``.nii`` / ``.nii.gz`` output name (its folder must exist).
        unit: ``"BQML"`` or ``"SUVbw"``; ``None`` takes the volume's.

    Returns:
        The written path.

    Raises:
        ArgumentError: values without an affine or a unit, or an unknown unit.
    """
    from .image_io import write_nifti

    if isinstance(vol_or_values, PETVolume):
        values = vol_or_values.values
        affine = vol_or_values.affine if affine is None else affine
        unit = vol_or_values.unit if unit is None else unit
    else:
        values = vol_or_values
    if affine is None or unit is None:
        raise ArgumentError("affine, unit: expected both with plain values (or pass a PETVolume), got None")
    _check_unit(unit, UNITS)
    vol = np.asarray(values)
    if np.iscomplexobj(vol) or vol.ndim != 3:
        raise ValueError(f"values: expected real (slices, rows, cols), got {vol.dtype} shape {vol.shape}")
    return write_nifti(vol, path, affine=affine, description=_NIFTI_TAG + unit)
