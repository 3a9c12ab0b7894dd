"""OCT results written back as the input was read (:mod:`medrecon.datasets.oct_images`).

- **Formats**: TIFF (uncompressed, one page per B-scan), PNG (8 or 16 bit), a new folder of the
  same file names, NIfTI with the input's header and affine, DICOM OPT as a derived instance of the
  input; a vendor file's result as ``.tif``, ``.nii.gz`` (its spacings) or ``.dcm`` (the header
  oct-converter builds, :mod:`medrecon.datasets.oct_vendor`). Integer types are rounded and
  clipped to their range.
- **Checked before the work**: the output's format against the input's
  (:func:`check_oct_output`, :func:`check_oct_writable`).
- **Atomic**: every file is written under a temporary name and renamed; a folder whole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_folder, atomic_output, check_output_path
from ..errors import InputFileError
from .oct_dicom import DICOM_SUFFIXES, write_oct_dicom
from .oct_images import NIFTI_SUFFIXES, PNG_SUFFIXES, TIFF_SUFFIXES, OCTFile, OCTImages, oct_kind
from .oct_vendor import check_vendor_output, vendor_nifti, write_vendor_dicom


def to_stored(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` in ``dtype``: integers rounded and clipped to the type's range, floats cast."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return np.asarray(values).astype(dtype)


def check_oct_output(source: str | Path, out: str | Path) -> Path:
    """Before any work: ``out`` has the input's format (a new or empty folder for a folder input).

    Raises:
        InputFileError: another format, a missing parent folder, or an existing non-empty folder.
    """
    kind, target = oct_kind(source), Path(out)
    if kind == "folder":
        if not target.is_dir() and target.name.lower().endswith(TIFF_SUFFIXES + PNG_SUFFIXES + NIFTI_SUFFIXES):
            raise InputFileError(
                target, "output", "a new or empty folder (the input is a folder of B-scans)", f"a file name {target.name!r}"
            )
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputFileError(
                target, "output", "a new or empty folder (the input is a folder of B-scans)", "an existing file or non-empty folder"
            )
        check_output_path(target.parent / (target.name + ".probe"))
        return target
    if target.is_dir():
        raise InputFileError(target, "output", f"a {kind.upper() if kind != 'nifti' else 'NIfTI'} file like the input", "a folder")
    try:
        out_kind = oct_kind(target)
    except InputFileError:
        out_kind = None
    if kind == "vendor" and out_kind not in ("tiff", "nifti", "dicom"):
        raise InputFileError(target, "output", "a .tif / .nii.gz / .dcm file (a vendor format is not written)", repr(target.name))
    if kind != "vendor" and out_kind != kind:
        suffixes = {"tiff": TIFF_SUFFIXES, "png": PNG_SUFFIXES, "nifti": NIFTI_SUFFIXES, "dicom": DICOM_SUFFIXES}[kind]
        raise InputFileError(target, "output", f"the input's format ({' / '.join(suffixes)})", repr(target.name))
    return check_output_path(target)


def oct_std_path(out: str | Path) -> Path:
    """Where the std of a diffusion result goes: ``NAME_std.tif`` / ``.png`` / ``.nii.gz`` beside a file, ``FOLDER_std/`` beside a folder."""
    target = Path(out)
    name = target.name.rstrip("/")
    for suffix in NIFTI_SUFFIXES[::-1] + TIFF_SUFFIXES + PNG_SUFFIXES + DICOM_SUFFIXES:  # .nii.gz before .nii
        if name.lower().endswith(suffix):
            return target.with_name(name[: -len(suffix)] + "_std" + name[-len(suffix) :])
    return target.with_name(name + "_std")


def _write_file(spec: OCTFile, values: np.ndarray, path: Path) -> None:
    """``values`` ``(count, H, W)`` as ``spec`` describes, at ``path`` (a temporary name already)."""
    data = to_stored(values, spec.dtype)
    if spec.kind == "tiff":
        import tifffile

        tifffile.imwrite(path, data if spec.stacked else data[0], photometric="minisblack")
    else:
        from PIL import Image

        Image.fromarray(data[0]).save(path, format="PNG")


def write_oct(images: OCTImages, values: np.ndarray, out: str | Path) -> Path:
    """Write ``values`` ``(N, H, W)`` (same shape as ``images.bscans``) in the input's format and types.

    Call :func:`check_oct_output` before the work; this writes atomically (a folder whole).
    """
    values = np.asarray(values)
    if values.shape != images.bscans.shape:
        raise ValueError(f"values: expected shape {images.bscans.shape} like the input, got {values.shape}")
    target = Path(out)
    if images.layout == "vendor":
        _write_vendor(images, values, target)
    elif images.layout == "nifti":
        _write_nifti(images.nifti, values, target)
    elif images.files[0].kind == "dicom":
        write_oct_dicom(images.source, to_stored(values, images.files[0].dtype), target)
    elif images.layout == "file":
        with atomic_output(target) as tmp:
            _write_file(images.files[0], values, tmp)
    else:
        with atomic_folder(target) as tmp:
            start = 0
            for spec in images.files:
                _write_file(spec, values[start : start + spec.count], tmp / spec.name)
                start += spec.count
    return target


def _write_nifti(nifti: tuple, values: np.ndarray, target: Path) -> None:
    img, axis, scaled = nifti
    order = {2: (0, 1, 2), 1: (1, 0, 2), 0: (1, 2, 0)}[axis]  # inverse of the reader's transposes
    volume = np.transpose(values, order)  # (k, j, i)
    data = np.transpose(volume, (2, 1, 0)).reshape(img.shape)
    dtype = np.float32 if scaled else np.dtype(img.get_data_dtype())
    header = img.header.copy()
    header.set_data_dtype(dtype)
    if scaled:
        header.set_slope_inter(1.0, 0.0)
    out = img.__class__(to_stored(data, dtype), img.affine, header)
    with atomic_output(target) as tmp:
        out.to_filename(str(tmp))


def check_oct_writable(images: OCTImages, out: str | Path) -> None:
    """Before the work: a vendor input can be written as ``out`` (NIfTI needs its spacing, DICOM integers).

    Raises:
        InputFileError: naming the input and what it lacks.
    """
    if images.vendor is not None:
        check_vendor_output(images.vendor, oct_kind(out), images.source)


def _write_vendor(images: OCTImages, values: np.ndarray, target: Path) -> None:
    """A vendor input's result as ``.tif`` (a stack in the read type), ``.nii.gz`` or DICOM OPT."""
    check_oct_writable(images, target)
    kind, dtype = oct_kind(target), images.files[0].dtype
    if kind == "dicom":
        write_vendor_dicom(images.vendor, values, target)
        return
    with atomic_output(target) as tmp:
        if kind == "tiff":
            _write_file(OCTFile(target.name, "tiff", dtype, len(values), True), values, tmp)
        else:
            img = vendor_nifti(images.vendor, to_stored(values, dtype))
            img.to_filename(str(tmp))
