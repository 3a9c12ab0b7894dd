"""MR volumes for translation (MR → synthetic CT): NIfTI or a DICOM MR series, its intensity scale and contrast fingerprint.

MR intensities have no physical unit, so a translation prior sees every MR volume divided by one
number of its own, :func:`mr_scale`: the 99th percentile of its foreground (voxels above the
volume's mean). Taking the percentile over the foreground, not the whole field of view, makes the
scale independent of how much air a scan includes.

:func:`contrast_fingerprint` summarises the normalised foreground intensities by their deciles;
a prior records the fingerprint of its training MR, and translation compares the input's with it
(:func:`fingerprint_distance`) to warn about an MR of another contrast (a T2 given to a T1 prior:
fluid bright instead of dark moves every decile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .dicom_series import read_series_headers, read_series_pixels

MR_NORMALISATION = "MR / 99th percentile of its foreground (voxels above the volume's mean)"
FINGERPRINT_QUANTILES = tuple(q / 10 for q in range(1, 10))


@dataclass
class MRVolume:
    """An MR volume with its geometry.

    Attributes:
        values: ``(slices, rows, cols)`` float32 as stored (after any DICOM rescale).
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm.
        source: the file or folder read.
        headers: the source DICOM headers in slice order (no pixel data), or empty for NIfTI.
    """

    values: np.ndarray
    affine: np.ndarray
    source: str = ""
    headers: list = field(default_factory=list)


def read_mr(path: str | Path) -> MRVolume:
    """Read a NIfTI MR volume, a DICOM MR series folder or one DICOM MR file.

    Raises:
        InputFileError: a missing or unreadable file, another DICOM modality, a singular affine,
            NaN / Inf values, an image without signal.
    """
    from .file_access import check_regular_file, load_nifti_volume

    p = Path(path)
    if p.is_dir():
        series = read_series_headers(p, "MR")
        vol = MRVolume(read_series_pixels(series.headers), series.affine, str(series.folder), series.headers)
    elif not p.exists():
        raise InputFileError(p, "file", "an existing NIfTI, DICOM MR folder or DICOM MR file", "no such file or folder")
    else:
        check_regular_file(p, "a NIfTI, DICOM MR folder or DICOM MR file")
        if p.name.lower().endswith((".nii", ".nii.gz")):
            values, affine = load_nifti_volume(p)
            vol = MRVolume(values, affine, str(p))
        else:
            series = read_series_headers([p], "MR")
            vol = MRVolume(read_series_pixels(series.headers), series.affine, str(p), series.headers)
    if not np.all(np.isfinite(vol.affine)) or abs(float(np.linalg.det(vol.affine[:3, :3]))) < 1e-9:
        raise InputFileError(p, "affine", "an invertible voxel-to-world matrix", "a singular or non-finite one")
    if not np.all(np.isfinite(vol.values)):
        raise InputFileError(p, "image", "finite MR values", "NaN or Inf")
    mr_scale(vol.values, p)  # refuses an image without signal
    return vol


def mr_scale(values: np.ndarray, source: str | Path = "MR") -> float:
    """The divisor of :data:`MR_NORMALISATION` for one volume ``(slices, rows, cols)``.

    Raises:
        InputFileError: no voxel above the mean (a constant image), or a non-positive scale.
    """
    v = np.asarray(values, dtype=np.float64)
    fg = v[v > v.mean()]
    scale = float(np.percentile(fg, 99)) if fg.size else 0.0
    if not scale > 0:
        raise InputFileError(source, "image", "an MR image with signal (a positive 99th percentile of its foreground)", f"{scale:g}")
    return scale


def contrast_fingerprint(normalised: np.ndarray) -> list[float]:
    """Deciles of the foreground (above the mean) of an MR volume already divided by :func:`mr_scale`."""
    v = np.asarray(normalised, dtype=np.float64)
    return [round(float(q), 4) for q in np.quantile(v[v > v.mean()], FINGERPRINT_QUANTILES)]


def fingerprint_distance(a: list[float], b: list[float]) -> float:
    """Mean absolute difference of two fingerprints (normalised intensity units; 0: the same histogram shape)."""
    return float(np.mean(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_mr_series(magnitude: np.ndarray, affine: np.ndarray, out_dir: str | Path, header=None, description: str = "medrecon MR") -> Path:
    """Write a derived MR series (magnitude ``(slices, rows, cols)``) into a new folder, atomically.

    Values are stored as int16 with one ``RescaleSlope`` (the volume's maximum maps to 32000), so a
    reader recovers them to 1 part in 32000; ``header`` (a pydicom dataset) gives the patient,
    study and frame-of-reference identifiers to carry.
    """
    from .dicom_series import CARRIED_COMMON, write_derived_series

    mag = np.asarray(magnitude, dtype=np.float64)
    peak = float(np.max(np.abs(mag))) if mag.size else 0.0
    slope = peak / 32000.0 if peak > 0 else 1.0
    stored = np.round(mag / slope).astype(np.int16)

    def mr_tags(ds, k: int) -> None:
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = f"{slope:.10g}", 0, "US"

    carried = (*CARRIED_COMMON, "Manufacturer", "ManufacturerModelName", "MagneticFieldStrength")
    return write_derived_series(
        stored,
        affine,
        out_dir,
        modality="MR",
        sop_class_uid=MR_IMAGE_STORAGE,
        image_type=("DERIVED", "SECONDARY", "OTHER"),
        description=description,
        reference_headers=[header] * stored.shape[0] if header is not None else (),
        carried=carried,
        slice_tags=mr_tags,
    )
