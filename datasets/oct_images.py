"""Retinal OCT B-scans in and out: TIFF / PNG files, folders of them, and NIfTI volumes.

Decoding is tifffile's, Pillow's and nibabel's; what is written here are the rules that make a
file a stack of grey B-scans ``(N, H, W)`` and write a result back in the input's own format and
data type, which none of those libraries decides:

- **What is read.** A ``.tif`` / ``.tiff`` (every page / stack axis is a B-scan), a ``.png`` (one
  B-scan), a folder of such files (its ``.tif`` / ``.tiff`` / ``.png`` files, hidden files
  excluded, in name order; all B-scans of one size), or a ``.nii`` / ``.nii.gz`` volume (B-scans
  along one voxel axis, below), or a DICOM Ophthalmic Tomography ``.dcm`` file (one B-scan per
  frame; :mod:`medrecon.datasets.oct_dicom`), or a vendor file (Heidelberg ``.e2e``, Topcon
  ``.fds`` / ``.fda``, Zeiss ``.img``, Bioptigen ``.oct``) through oct-converter
  (:mod:`medrecon.datasets.oct_vendor`).
- **Grey only.** A colour file whose colour channels are equal everywhere (a grey B-scan saved as
  RGB, or a grey palette) is read as grey and written back as grey, with a note; an alpha channel
  is ignored, with a note. Any other colour file is refused: a colour map or an annotation cannot
  be turned back into intensities. One-bit, complex, MINISWHITE, palette TIFF and CMYK / YCbCr
  files are refused.
- **Bit depth.** 8-bit is not assumed anywhere downstream (the denoisers' parameters follow the
  noise level estimated from each B-scan), so 16-bit, other integer and float B-scans are
  processed on their own scale and written back in their own type, with a note for anything but
  8-bit: nothing is converted.
- **Refused B-scans.** A constant B-scan (all zero included) or one with NaN / Inf values: no noise
  or structure can be estimated from it.
- **NIfTI B-scan axis.** The B-scans lie along the voxel axis whose spacing is at least
  :data:`BSCAN_SPACING_RATIO` times both others' (in OCT the slow-scan spacing between B-scans is
  far coarser than the A-scan and depth spacings), or along the one axis of size 1; otherwise the
  axis cannot be determined and the volume is refused unless ``bscan_axis`` (``--bscan-axis``)
  names it. Within a B-scan, rows run along the higher of the two other voxel axes and columns
  along the lower, as medrecon's NIfTI writer stores ``(slices, rows, cols)``. A volume is written
  back with its own header and affine: in its stored type, or float32 when the header scaled the
  values (``scl_slope`` / ``scl_inter``).

Results are written back in the input's format by :mod:`medrecon.datasets.oct_output`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..memory import check_allocation
from .file_access import check_regular_file, load_nifti_volume
from .oct_dicom import DICOM_SUFFIXES, read_oct_dicom
from .oct_vendor import VENDOR_SUFFIXES, VendorVolume, read_vendor_oct

TIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
BSCAN_SPACING_RATIO = 1.5
EXPECTED = "a grey OCT B-scan image"


@dataclass(frozen=True)
class OCTFile:
    """One TIFF or PNG file of a stack: where its B-scans sit and how to write them back.

    Attributes:
        name: the file name (inside the folder for a folder input).
        kind: ``"tiff"`` or ``"png"``.
        dtype: the stored data type.
        count: how many B-scans it holds.
        stacked: whether it is written as a stack ``(count, H, W)`` (a multi-page TIFF).
    """

    name: str
    kind: str
    dtype: np.dtype
    count: int
    stacked: bool


@dataclass
class OCTImages:
    """B-scans read from a file, folder or volume, with what is needed to write a result back.

    Attributes:
        bscans: ``(N, H, W)`` float32, the values as stored.
        source: the input path.
        layout: ``"file"``, ``"folder"``, ``"nifti"`` or ``"vendor"``.
        files: for ``file`` / ``folder``, the files in order (their B-scans concatenated).
        nifti: for ``nifti``, ``(image, bscan_axis, scaled)``: the nibabel image (header, affine),
            the voxel axis of the B-scans and whether the header scaled the values.
        notes: what was assumed or converted while reading, one line each (commands print them).
        vendor: for ``vendor``, the volume read by oct-converter (spacing and DICOM metadata).
    """

    bscans: np.ndarray
    source: Path
    layout: str
    files: list[OCTFile] = field(default_factory=list)
    nifti: tuple | None = None
    notes: list[str] = field(default_factory=list)
    vendor: VendorVolume | None = None


def oct_kind(path: str | Path) -> str:
    """``"folder"``, ``"tiff"``, ``"png"``, ``"nifti"``, ``"dicom"`` or ``"vendor"`` from an existing folder or a file name's suffix.

    Raises:
        InputFileError: any other suffix.
    """
    p = Path(path)
    if p.is_dir():
        return "folder"
    name = p.name.lower()
    kinds = (
        ("tiff", TIFF_SUFFIXES),
        ("png", PNG_SUFFIXES),
        ("nifti", NIFTI_SUFFIXES),
        ("dicom", DICOM_SUFFIXES),
        ("vendor", VENDOR_SUFFIXES),
    )
    for kind, suffixes in kinds:
        if name.endswith(suffixes):
            return kind
    expected = "a .tif / .tiff / .png / .nii / .nii.gz / .dcm file, a vendor .e2e / .fds / .fda / .img / .oct file or a folder of B-scans"
    raise InputFileError(p, "file type", expected, repr(p.name))


def _grey(arr: np.ndarray, channels: bool, path: Path, notes: list[str]) -> np.ndarray:
    """``(n, H, W[, C])`` → ``(n, H, W)``: the rules of the module docstring for colour and alpha."""
    if not channels:
        return arr
    c = arr.shape[-1]
    if c in (2, 4):
        notes.append(f"{path}: alpha channel ignored")
        arr, c = arr[..., : c - 1], c - 1
    if c == 1:
        return arr[..., 0]
    if c != 3 or not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
        raise InputFileError(path, "colour", "grey B-scans (one channel, or colour channels equal everywhere)", f"{c} differing channels")
    notes.append(f"{path}: colour channels are equal: read as grey, written back as grey")
    return arr[..., 0]


def _check_dtype(dtype: np.dtype, path: Path, notes: list[str]) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":  # bool, complex, text, objects
        raise InputFileError(path, "data type", "integer or float grey values", str(dtype))
    if dtype != np.uint8:
        notes.append(f"{path}: {dtype} B-scans: denoised on their own scale and written back as {dtype} (8 bits are not assumed)")
    return dtype


def _read_tiff(path: Path, notes: list[str]) -> tuple[np.ndarray, OCTFile]:
    import tifffile

    check_regular_file(path, "a readable TIFF image")
    try:
        with tifffile.TiffFile(path) as tif:
            if len(tif.series) != 1:
                raise InputFileError(path, "pages", "one series of same-size B-scans", f"{len(tif.series)} series")
            series, page = tif.series[0], tif.pages[0]
            photometric = int(page.photometric)
            if photometric not in (1, 2):  # MINISBLACK, RGB
                names = {int(v): v.name for v in tifffile.PHOTOMETRIC}
                raise InputFileError(
                    path, "photometric", "MINISBLACK grey (or RGB with equal channels)", names.get(photometric, str(photometric))
                )
            check_allocation((series.shape, series.dtype), path, "image", working=(np.float32,), what="an image")
            arr, axes = series.asarray(), series.axes
    except InputFileError:
        raise
    except Exception as err:  # tifffile raises many types on corrupt files
        raise InputFileError(path, "file", "a readable TIFF image", f"unreadable ({err.__class__.__name__}: {err})") from None
    dtype = _check_dtype(arr.dtype, path, notes)
    channels = "S" in axes
    if channels:
        arr = np.moveaxis(arr, axes.index("S"), -1)
        axes = axes.replace("S", "") + "S"
    if not axes.replace("S", "").endswith("YX"):
        raise InputFileError(path, "axes", "B-scans with rows and columns (axes ...YX)", repr(series.axes))
    rows_cols = arr.shape[-3:] if channels else arr.shape[-2:]
    arr = arr.reshape((-1, *rows_cols))
    grey = _grey(arr, channels, path, notes)
    return grey, OCTFile(path.name, "tiff", dtype, grey.shape[0], arr.shape[0] > 1 or len(axes.replace("S", "")) > 2)


def _read_png(path: Path, notes: list[str]) -> tuple[np.ndarray, OCTFile]:
    from PIL import Image

    check_regular_file(path, "a readable PNG image")
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise InputFileError(path, "format", "a PNG image", str(im.format))
            if getattr(im, "n_frames", 1) > 1:
                raise InputFileError(path, "frames", "one B-scan per PNG", f"an animated PNG of {im.n_frames} frames")
            if im.mode == "1":
                raise InputFileError(path, "data type", "integer grey values", "a 1-bit (black and white) image")
            width, height = im.size
            check_allocation(((height, width, 4), np.uint16), path, "image", working=(np.float32,), what="an image")
            if im.mode in ("P", "PA"):
                im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
            arr = np.asarray(im)
    except InputFileError:
        raise
    except Exception as err:  # Pillow raises many types on corrupt files
        raise InputFileError(path, "file", "a readable PNG image", f"unreadable ({err.__class__.__name__}: {err})") from None
    if arr.dtype.kind in "iu" and arr.dtype.itemsize > 1 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # 16-bit PNG (mode I;16 / I): stored as 16 bits
    dtype = _check_dtype(arr.dtype, path, notes)
    grey = _grey(arr[None], arr.ndim == 3, path, notes)
    return grey, OCTFile(path.name, "png", dtype, 1, False)


def _read_folder(folder: Path, notes: list[str]) -> tuple[np.ndarray, list[OCTFile]]:
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    images = [p for p in entries if p.name.lower().endswith(TIFF_SUFFIXES + PNG_SUFFIXES)]
    if not images:
        raise InputFileError(folder, "folder", "a folder with .tif / .tiff / .png B-scans", "none")
    if len(images) < len(entries):
        notes.append(f"{folder}: {len(entries) - len(images)} entries that are not .tif / .tiff / .png files ignored")
    stacks, files = [], []
    for p in images:
        arr, spec = (_read_tiff if p.name.lower().endswith(TIFF_SUFFIXES) else _read_png)(p, notes)
        if stacks and arr.shape[1:] != stacks[0].shape[1:]:
            raise InputFileError(p, "B-scan size", f"{stacks[0].shape[1:]} like {files[0].name} (one size per folder)", f"{arr.shape[1:]}")
        stacks.append(arr)
        files.append(spec)
    return np.concatenate(stacks), files


def _nifti_axis(path: Path, shape: tuple[int, ...], zooms: tuple[float, ...], bscan_axis: int | None) -> int:
    """The voxel axis of the B-scans (module docstring's rule), or :class:`InputFileError`."""
    if len(shape) == 2:
        return 2
    if bscan_axis is not None:
        return bscan_axis
    ones = [a for a in range(3) if shape[a] == 1]
    if len(ones) == 1:
        return ones[0]
    for a in range(3):
        others = [zooms[b] for b in range(3) if b != a]
        if all(zooms[a] >= BSCAN_SPACING_RATIO * z for z in others):
            return a
    raise InputFileError(
        path,
        "B-scan axis",
        f"one voxel spacing ≥ {BSCAN_SPACING_RATIO}× the other two (the spacing between B-scans), or --bscan-axis 0|1|2",
        f"spacings {tuple(round(float(z), 6) for z in zooms[:3])} mm for shape {tuple(shape)}",
    )


def _read_nifti(path: Path, bscan_axis: int | None, notes: list[str]) -> tuple[np.ndarray, tuple]:
    import nibabel as nib

    volume, _ = load_nifti_volume(path)  # (k, j, i) float32; checks the file and the memory budget
    img = nib.load(str(path))
    stored = _check_dtype(img.get_data_dtype(), path, notes)
    scaled = np.isfinite(img.dataobj.slope) and (img.dataobj.slope != 1.0 or img.dataobj.inter != 0.0)
    axis = _nifti_axis(path, img.shape, img.header.get_zooms(), bscan_axis)
    # (k, j, i): the B-scan axis first, then the higher remaining voxel axis (rows), then the lower (cols)
    order = {2: (0, 1, 2), 1: (1, 0, 2), 0: (2, 0, 1)}[axis]
    bscans = np.ascontiguousarray(np.transpose(volume, order))
    if scaled:
        notes.append(f"{path}: the header scales the stored {stored} values: written back as float32")
    return bscans, (img, axis, bool(scaled))


def _check_bscans(bscans: np.ndarray, source: Path, files: list[OCTFile]) -> None:
    """Refuse NaN / Inf and constant B-scans, naming the file (and B-scan) they come from."""
    where = [(f.name, i, f.count) for f in files for i in range(f.count)] or [(None, n, len(bscans)) for n in range(len(bscans))]
    for b, (name, i, count) in zip(bscans, where):
        path = source / name if name is not None and source.is_dir() else source
        label = f"B-scan {i}" if count > 1 else "B-scan"
        if not np.all(np.isfinite(b)):
            raise InputFileError(path, label, "finite values", "NaN or Inf")
        if float(b.min()) == float(b.max()):
            raise InputFileError(path, label, "a B-scan with varying intensities", f"every pixel {float(b.min()):g}")


def read_oct(path: str | Path, bscan_axis: int | None = None) -> OCTImages:
    """Read grey OCT B-scans from a TIFF / PNG file, a folder of them or a NIfTI volume.

    Args:
        path: the file or folder.
        bscan_axis: NIfTI only: the voxel axis (0, 1, 2) of the B-scans; ``None`` applies the
            spacing rule of the module docstring.

    Returns:
        :class:`OCTImages` with ``bscans`` ``(N, H, W)`` float32.

    Raises:
        InputFileError: the rules of the module docstring (one line naming file and field).
    """
    p = Path(path)
    if bscan_axis is not None and bscan_axis not in (0, 1, 2):
        raise InputFileError(p, "B-scan axis", "0, 1 or 2", str(bscan_axis))
    if not p.exists():
        check_regular_file(p, EXPECTED)  # missing, or not accessible: says which
    kind = oct_kind(p)
    if bscan_axis is not None and kind != "nifti":
        raise InputFileError(p, "B-scan axis", "--bscan-axis only with a NIfTI volume", f"a {kind} input")
    notes: list[str] = []
    files: list[OCTFile] = []
    nifti = vendor = None
    if kind == "vendor":
        vendor = read_vendor_oct(p)
        arr = vendor.bscans
        files = [OCTFile(p.name, "vendor", _check_dtype(arr.dtype, p, notes), arr.shape[0], True)]
    elif kind == "folder":
        arr, files = _read_folder(p, notes)
    elif kind == "nifti":
        arr, nifti = _read_nifti(p, bscan_axis, notes)
    elif kind == "dicom":
        arr, dtype = read_oct_dicom(p)
        files = [OCTFile(p.name, "dicom", _check_dtype(dtype, p, notes), arr.shape[0], True)]
    else:
        arr, spec = (_read_tiff if kind == "tiff" else _read_png)(p, notes)
        files = [spec]
    bscans = np.asarray(arr, dtype=np.float32)
    _check_bscans(bscans, p, files)
    layout = {"folder": "folder", "nifti": "nifti", "vendor": "vendor"}.get(kind, "file")
    return OCTImages(bscans, p, layout, files, nifti, notes, vendor)


def stored_dtypes(images: OCTImages) -> set[np.dtype]:
    """The data types the B-scans are stored in (every file's; NIfTI: the header's)."""
    return {f.dtype for f in images.files} or {np.dtype(images.nifti[0].get_data_dtype())}
