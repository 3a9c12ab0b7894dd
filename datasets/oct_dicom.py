"""DICOM Ophthalmic Tomography (OPT) B-scans in and out: one multi-frame file, one B-scan per frame.

Decoding and encoding are pydicom's; the rules here are what makes such a file a stack of grey
B-scans and how a result goes back:

- **Read**: a ``.dcm`` file whose SOP class is Ophthalmic Tomography Image Storage or whose
  Modality is ``OPT``, one sample per pixel (MONOCHROME2; MONOCHROME1 is refused: inverted grey
  would be denoised on the wrong side of the speckle model), frames ``(N, rows, columns)`` in
  the stored integer type. Other modalities, colour and pixel data pydicom cannot decode (a
  compressed transfer syntax without its decoder) are refused with one line.
- **Write**: a derived instance of the same study and patient (the source's attributes kept; new
  SOP instance and series UIDs, ``ImageType`` DERIVED / SECONDARY, the series description naming
  medrecon), uncompressed explicit-VR little endian, written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import InputFileError
from ..memory import check_allocation
from .file_access import check_regular_file

OPT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.5.4"  # Ophthalmic Tomography Image Storage
DICOM_SUFFIXES = (".dcm",)


def read_oct_dicom(path: Path) -> tuple[np.ndarray, np.dtype]:
    """B-scans ``(N, H, W)`` in the stored type of a DICOM OPT file, and that type.

    Raises:
        InputFileError: not DICOM, not OPT, colour or inverted grey, undecodable pixel data.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    check_regular_file(path, "a DICOM Ophthalmic Tomography (OPT) file")
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise InputFileError(path, "file", "a readable DICOM file", f"unreadable ({err.__class__.__name__}: {err})") from None
    sop, modality = str(ds.get("SOPClassUID", "")), str(ds.get("Modality", ""))
    if sop != OPT_SOP_CLASS and modality != "OPT":
        raise InputFileError(path, "Modality", "an Ophthalmic Tomography (OPT) image", f"Modality {modality or 'missing'!r}")
    if "PixelData" not in ds:
        raise InputFileError(path, "PixelData", "B-scan pixel data", "missing")
    if int(ds.get("SamplesPerPixel", 1)) != 1 or str(ds.get("PhotometricInterpretation", "")) != "MONOCHROME2":
        got = f"{ds.get('PhotometricInterpretation', 'missing')}, {ds.get('SamplesPerPixel', 1)} samples per pixel"
        raise InputFileError(path, "PhotometricInterpretation", "MONOCHROME2 grey, one sample per pixel", got)
    frames, rows, cols = int(ds.get("NumberOfFrames", 1) or 1), int(ds.get("Rows", 0)), int(ds.get("Columns", 0))
    if min(frames, rows, cols) < 1:
        raise InputFileError(path, "Rows / Columns / NumberOfFrames", "positive sizes", f"{rows} x {cols} x {frames}")
    check_allocation(((frames, rows, cols), np.float32), path, "PixelData", what="B-scans")
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as err:  # pydicom raises many types for undecodable or truncated pixel data
        raise InputFileError(path, "PixelData", "decodable pixel data", f"{err.__class__.__name__}: {err}") from None
    arr = arr.reshape((frames, rows, cols))
    return arr, arr.dtype


def write_oct_dicom(source: Path, data: np.ndarray, target: Path) -> None:
    """Stored values ``data`` ``(N, H, W)`` (the source's type) as a derived OPT instance of ``source`` at ``target`` (atomically)."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out = pydicom.dcmread(source)
    description = out.get("SeriesDescription", "")
    out.PixelData = np.ascontiguousarray(data).tobytes()
    out["PixelData"].VR = "OW" if data.dtype.itemsize > 1 else "OB"
    out.SOPInstanceUID = generate_uid()
    out.SeriesInstanceUID = generate_uid()
    out.ImageType = ["DERIVED", "SECONDARY"]
    out.SeriesDescription = f"medrecon denoised {description}".strip()[:64]
    out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    with atomic_output(target) as tmp:
        out.save_as(tmp, enforce_file_format=True)
