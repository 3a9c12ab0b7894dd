"""Vendor OCT files through oct-converter: Heidelberg ``.e2e``, Topcon ``.fds`` / ``.fda``, Zeiss Cirrus ``.img``, Bioptigen / Optovue ``.oct``.

Decoding is oct-converter's (optional: ``pip install "medrecon[oct-vendor]"``). What is decided
here, which oct-converter leaves to its caller:

- **One volume per file.** A file holding several volumes (an ``.e2e`` of several scans) is
  refused with the count: split it first (oct-converter's ``create_dicom_from_oct``).
- **Zeiss ``.img``** is raw bytes without a header: the cube size is read from the file name as
  Zeiss writes it (``… 512x128 …``: A-scans per B-scan × B-scans), the depth from the file size;
  a name without it, or a size that does not divide, is refused.
- **Values** stay as the reader returns them (uint16 for Topcon and Bioptigen, uint8 for Zeiss,
  float32 in [0, 1] for Heidelberg after oct-converter's intensity transform).
- **Geometry.** oct-converter's ``pixel_spacing`` is ``(across a B-scan, between B-scans, depth)``
  in mm; a NIfTI result puts the B-scans on the third voxel axis with those spacings. A file
  without spacing can be written as TIFF or DICOM, not NIfTI.
- **DICOM OPT out.** The header (patient, study, laterality, geometry) is the one oct-converter
  builds from the vendor metadata; the pixel data are the result in 16 bits. Float B-scans are
  refused for DICOM (no scaling is invented).
- numpy ≥ 2.3 removed the binary mode of ``np.fromstring``, which oct-converter 0.7's Topcon and
  Optovue readers call; while one of those readers runs, its module's ``np.fromstring`` is
  ``np.frombuffer`` (a copy), nothing else changes.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError, MissingDependencyError
from ..memory import check_allocation
from .file_access import check_regular_file

VENDOR_SUFFIXES = (".e2e", ".fds", ".fda", ".img", ".oct")
EXPECTED = "a vendor OCT file oct-converter reads (.e2e, .fds, .fda, .img, .oct)"
ZEISS_CUBE = re.compile(r"(\d+)x(\d+)")


@dataclass
class VendorVolume:
    """One volume of a vendor file.

    Attributes:
        bscans: ``(N, H, W)`` in the reader's type (uint8 / uint16 / float32).
        spacing: ``(across, between, depth)`` mm, or ``None`` when the file records none.
        volume: oct-converter's ``OCTVolumeWithMetaData`` (metadata for a DICOM header).
        kind: the suffix without the dot (``"fds"``, ``"img"``, …; ``"boct"`` / ``"poct"`` for ``.oct``).
    """

    bscans: np.ndarray
    spacing: tuple[float, float, float] | None
    volume: object
    kind: str


def is_vendor(path: str | Path) -> bool:
    """Whether ``path``'s suffix is a vendor OCT format (read through oct-converter)."""
    return Path(path).name.lower().endswith(VENDOR_SUFFIXES)


def _readers():
    try:
        from oct_converter import readers
    except ImportError:
        return None
    return readers


@contextlib.contextmanager
def _numpy_fromstring_compat(*modules: types.ModuleType):
    """``np.fromstring(bytes, dtype)`` as ``np.frombuffer(...).copy()`` inside ``modules`` only."""

    def fromstring(data, dtype=float, count=-1, sep=""):
        if sep:
            return np.fromstring(data, dtype=dtype, count=count, sep=sep)
        return np.frombuffer(data, dtype=dtype, count=count).copy()

    shim = types.SimpleNamespace(**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")})
    shim.fromstring = fromstring
    saved = [m.np for m in modules]
    for m in modules:
        m.np = shim
    try:
        yield
    finally:
        for m, original in zip(modules, saved):
            m.np = original


def _zeiss_shape(path: Path) -> tuple[int, int]:
    """``(rows, cols)`` of a Zeiss ``.img`` B-scan from its name's ``AxB`` and its size."""
    match = ZEISS_CUBE.search(path.name)
    size = path.stat().st_size
    if match is None:
        raise InputFileError(
            path, "file name", "a Zeiss cube size in the name (e.g. 'Macular Cube 512x128'): .img has no header", repr(path.name)
        )
    cols, count = int(match.group(1)), int(match.group(2))
    if cols < 1 or count < 1 or size % (cols * count) or size == 0:
        raise InputFileError(path, "file size", f"a multiple of {cols} x {count} bytes (the name's cube size)", f"{size} bytes")
    return size // (cols * count), cols


def _read_volumes(path: Path, kind: str, readers) -> tuple[list, str]:
    if kind == "img":
        rows, cols = _zeiss_shape(path)
        return [readers.IMG(path).read_oct_volume(rows=rows, cols=cols)], "img"
    if kind == "fds":
        from oct_converter.readers import fds

        with _numpy_fromstring_compat(fds):
            return [readers.FDS(path).read_oct_volume()], "fds"
    if kind == "fda":
        from oct_converter.readers import fda

        with _numpy_fromstring_compat(fda):
            return [readers.FDA(path).read_oct_volume()], "fda"
    if kind == "e2e":
        return list(readers.E2E(path).read_oct_volume()), "e2e"
    try:  # .oct: Bioptigen, else Optovue (oct-converter's own rule)
        return list(readers.BOCT(path).read_oct_volume()), "boct"
    except Exception:
        from oct_converter.readers import poct

        with _numpy_fromstring_compat(poct):
            return list(readers.POCT(path).read_oct_volume()), "poct"


def read_vendor_oct(path: str | Path) -> VendorVolume:
    """The one OCT volume of a vendor file.

    Raises:
        InputFileError: oct-converter missing, an unreadable file, not one volume, B-scans of
            different sizes, a Zeiss name without the cube size.
    """
    p = Path(path)
    check_regular_file(p, EXPECTED)
    readers = _readers()
    if readers is None:
        raise MissingDependencyError("oct_converter", '"medrecon[oct-vendor]"', "vendor OCT files (.e2e, .fds, .fda, .img, .oct)")
    kind = p.name.lower().rsplit(".", 1)[-1]
    # the B-scans are at most the file's bytes (uint8; fewer pixels when wider), read and then copied as float32
    check_allocation(((p.stat().st_size,), np.uint8), p, "file", working=(np.float32, np.float32), what="an OCT volume")
    try:
        volumes, kind = _read_volumes(p, kind, readers)
    except InputFileError:
        raise
    except Exception as err:  # the readers raise many types on files they cannot parse
        why = " ".join(str(err).split())  # construct's messages span lines
        raise InputFileError(
            p, "file", f"a readable .{kind} OCT file", f"unreadable by oct-converter ({err.__class__.__name__}: {why})"
        ) from None
    if len(volumes) != 1:
        raise InputFileError(
            p, "volumes", "one OCT volume per file (split it with oct-converter's create_dicom_from_oct)", f"{len(volumes)} volumes"
        )
    vol = volumes[0]
    frames = [np.asarray(b) for b in vol.volume]
    if not frames or any(f.ndim != 2 or f.shape != frames[0].shape for f in frames):
        got = ", ".join(sorted({str(f.shape) for f in frames})) or "none"
        raise InputFileError(p, "B-scans", "2-D B-scans of one size", got)
    bscans = np.stack(frames)
    if bscans.dtype.kind == "f":
        bscans = bscans.astype(np.float32)
    spacing = vol.pixel_spacing
    spacing = tuple(float(s) for s in spacing) if spacing is not None and len(spacing) == 3 and all(s and s > 0 for s in spacing) else None
    return VendorVolume(bscans, spacing, vol, kind)


def check_vendor_output(vendor: VendorVolume, out_kind: str, source: Path) -> None:
    """Before the work: ``out_kind`` (``"tiff"`` / ``"nifti"`` / ``"dicom"``) can hold this volume.

    Raises:
        InputFileError: NIfTI without recorded spacing, DICOM of float B-scans.
    """
    if out_kind == "nifti" and vendor.spacing is None:
        raise InputFileError(source, "pixel spacing", "spacings for a NIfTI output (or write .tif / .dcm)", "none recorded")
    if out_kind == "dicom" and vendor.bscans.dtype.kind == "f":
        raise InputFileError(source, "data type", "integer B-scans for a DICOM output (write .nii.gz or .tif)", str(vendor.bscans.dtype))


def vendor_nifti(vendor: VendorVolume, data: np.ndarray):
    """A NIfTI image of ``data`` ``(N, H, W)``: voxel axes (across, depth, B-scans) with the file's spacings (checked)."""
    import nibabel as nib

    across, between, depth = vendor.spacing
    affine = np.diag([across, depth, between, 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(np.transpose(data, (2, 1, 0))), affine)
    img.header.set_xyzt_units("mm")
    return img


def vendor_dicom_template(vendor: VendorVolume, folder: Path) -> Path:
    """oct-converter's DICOM OPT file of this volume, in ``folder``: the header a result is written into."""
    from oct_converter.dicom import dicom as writer

    module = {"e2e": "e2e_meta", "fds": "fds_meta", "fda": "fda_meta", "img": "img_meta", "boct": "boct_meta", "poct": "poct_meta"}[
        vendor.kind
    ]
    meta_module = __import__(f"oct_converter.dicom.{module}", fromlist=["x"])
    meta = getattr(meta_module, f"{vendor.kind}_dicom_metadata")(vendor.volume)
    return Path(writer.write_opt_dicom(meta, list(vendor.bscans), folder / "template.dcm"))


def write_vendor_dicom(vendor: VendorVolume, data: np.ndarray, target: Path) -> None:
    """``data`` ``(N, H, W)`` as a 16-bit DICOM OPT file with the vendor file's header, atomically (integer B-scans: checked)."""
    from .oct_dicom import write_oct_dicom

    info = np.iinfo(np.uint16)
    values = np.clip(np.rint(data), info.min, info.max).astype(np.uint16)
    with tempfile.TemporaryDirectory(prefix=".medrecon-oct-") as tmp:
        write_oct_dicom(vendor_dicom_template(vendor, Path(tmp)), values, target)
