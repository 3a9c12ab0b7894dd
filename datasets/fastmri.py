"""fastMRI HDF5 files (single- and multi-coil), read lazily slice by slice.

Layout (fastMRI dataset documentation):

- ``kspace``: ``(slices, coils, rows, cols)`` complex64 (multi-coil) or ``(slices, rows, cols)``
  (single-coil); phase encoding along ``cols``.
- ``mask``: ``(cols,)`` in test / challenge files (and in files ``medrecon simulate`` writes, which
  may also store a 2-D ``(rows, cols)`` mask).
- ``reconstruction_rss`` (multi-coil) / ``reconstruction_esc`` (single-coil): ``(slices, 320, 320)``
  float32 targets, absent from test files.
- ``ismrmrd_header``: the ISMRMRD XML header (encoded / recon matrix size, field of view,
  ``kspace_encoding_step_1`` limits).
- attributes: ``acquisition``, ``max``, ``norm``, ``patient_id`` (and ``acceleration``,
  ``num_low_frequency`` in test files).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..memory import check_allocation
from .file_access import h5_dataset, open_h5, read_dataset
from .kspace_source import KSpaceSource, SliceGeometry, check_mask_shape

ISMRMRD_NS = "{http://www.ismrm.org/ISMRMRD}"


@dataclass(frozen=True)
class IsmrmrdEncoding:
    """The parts of the ISMRMRD header fastMRI uses.

    Attributes:
        encoded_size: encoded matrix ``(x, y, z)``.
        recon_size: reconstruction matrix ``(x, y, z)``; fastMRI crops images to ``(x, y)`` =
            (rows, cols), x being the readout.
        recon_fov_mm: reconstruction field of view ``(x, y, z)`` in mm.
        enc_center: ``kspace_encoding_step_1`` centre.
        enc_max: ``kspace_encoding_step_1`` maximum + 1.
    """

    encoded_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    recon_fov_mm: tuple[float, float, float]
    enc_center: int
    enc_max: int

    @property
    def padding(self) -> tuple[int, int]:
        """Columns of zero padding ``(left, right)`` fastMRI derives for the phase-encode axis."""
        left = self.encoded_size[1] // 2 - self.enc_center
        return left, left + self.enc_max


def parse_ismrmrd_header(path: Path, xml: bytes | str) -> IsmrmrdEncoding:
    """Parse the encoding section of an ISMRMRD XML header, raising :class:`InputFileError` on gaps."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise InputFileError(path, "ismrmrd_header", "ISMRMRD XML", f"unparseable text ({err})") from None

    def find(*names: str, cast=int, lowest: float = 0):
        node = root
        for n in names:
            node = node.find(ISMRMRD_NS + n) if node is not None else None
        if node is None or node.text is None:
            raise InputFileError(path, "ismrmrd_header", "element " + "/".join(names), "nothing")
        kind = "an integer" if cast is int else "a finite number"
        try:
            value = cast(node.text.strip())
        except ValueError:
            raise InputFileError(path, "ismrmrd_header", f"{'/'.join(names)}: {kind} >= {lowest:g}", repr(node.text)) from None
        if not math.isfinite(value) or value < lowest:
            raise InputFileError(path, "ismrmrd_header", f"{'/'.join(names)}: {kind} >= {lowest:g}", repr(node.text))
        return value

    def triple(*prefix: str, cast=int, lowest: float = 0):
        return tuple(find(*prefix, a, cast=cast, lowest=lowest) for a in ("x", "y", "z"))

    encoded = triple("encoding", "encodedSpace", "matrixSize")
    # the in-plane voxel size is the reconstruction field of view over its matrix: both positive
    recon = triple("encoding", "reconSpace", "matrixSize", lowest=1)
    fov = triple("encoding", "reconSpace", "fieldOfView_mm", cast=float)
    if min(fov[:2]) <= 0:
        raise InputFileError(path, "ismrmrd_header", "encoding/reconSpace/fieldOfView_mm: x, y > 0", f"{fov}")
    return IsmrmrdEncoding(
        encoded_size=encoded,
        recon_size=recon,
        recon_fov_mm=fov,
        enc_center=find("encoding", "encodingLimits", "kspace_encoding_step_1", "center"),
        enc_max=find("encoding", "encodingLimits", "kspace_encoding_step_1", "maximum") + 1,
    )


def make_ismrmrd_header(
    encoded_size: tuple[int, int, int],
    recon_size: tuple[int, int, int],
    recon_fov_mm: tuple[float, float, float],
    enc_center: int,
    enc_max: int,
) -> bytes:
    """A minimal ISMRMRD XML header with the fields fastMRI reads (used by ``simulate`` and tests)."""

    def trip(tag: str, vals) -> str:
        return f"<{tag}><x>{vals[0]}</x><y>{vals[1]}</y><z>{vals[2]}</z></{tag}>"

    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>'
        f"<encodedSpace>{trip('matrixSize', encoded_size)}{trip('fieldOfView_mm', recon_fov_mm)}</encodedSpace>"
        f"<reconSpace>{trip('matrixSize', recon_size)}{trip('fieldOfView_mm', recon_fov_mm)}</reconSpace>"
        "<encodingLimits><kspace_encoding_step_1>"
        f"<minimum>0</minimum><maximum>{enc_max - 1}</maximum><center>{enc_center}</center>"
        "</kspace_encoding_step_1></encodingLimits>"
        "</encoding></ismrmrdHeader>"
    )
    return xml.encode()


class FastMRIFile(KSpaceSource):
    """A fastMRI h5 file; k-space is read one slice at a time.

    Args:
        path: the ``.h5`` file.

    Raises:
        InputFileError: not HDF5, no ``kspace``, wrong dtype or rank, zero coils, bad mask shape,
            or an unparseable ISMRMRD header.
    """

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        with open_h5(p) as f:
            ds = h5_dataset(p, f, "kspace", "an HDF5 dataset 'kspace'")
            if not np.issubdtype(ds.dtype, np.complexfloating):
                raise InputFileError(p, "kspace", "complex64 k-space", f"dtype {ds.dtype}")
            if ds.ndim == 4:
                fmt, (s, c, h, w) = "fastmri-multicoil", ds.shape
            elif ds.ndim == 3:
                fmt, (s, h, w), c = "fastmri-singlecoil", ds.shape, 1
            else:
                raise InputFileError(p, "kspace", "(slices, coils, rows, cols) or (slices, rows, cols)", f"shape {ds.shape}")
            if min(s, c, h, w) == 0:
                raise InputFileError(p, "kspace", "at least one slice and one coil of at least one row and column", f"shape {ds.shape}")
            self._mask = check_mask_shape(p, read_dataset(p, f["mask"], "mask", np.float32), h, w) if "mask" in f else None
            self._target_key = next((k for k in ("reconstruction_rss", "reconstruction_esc") if k in f), None)
            header = h5_dataset(p, f, "ismrmrd_header", "ISMRMRD XML text") if "ismrmrd_header" in f else None
            self.encoding = None if header is None else parse_ismrmrd_header(p, header[()])
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            if self._target_key is not None:
                tshape = h5_dataset(p, f, self._target_key, "an HDF5 dataset of reference images").shape
                if len(tshape) != 3 or tshape[0] != s:
                    raise InputFileError(p, self._target_key, f"({s}, rows, cols)", f"shape {tshape}")
                check_allocation((tshape[1:], f[self._target_key].dtype), p, self._target_key, working=(np.float32,), what="an image")
                recon_size: tuple[int, int] | None = (int(tshape[1]), int(tshape[2]))
            elif self.encoding is not None:
                recon_size = (self.encoding.recon_size[0], self.encoding.recon_size[1])  # (x, y) = (rows, cols)
            else:
                recon_size = None
        if self.encoding is not None:
            fov, rs = self.encoding.recon_fov_mm, self.encoding.recon_size
            voxel = (fov[0] / rs[0], fov[1] / rs[1], fov[2] / max(rs[2], 1))
        else:
            voxel = (1.0, 1.0, 1.0)
        super().__init__(p, fmt, int(s), (int(c), int(h), int(w)), SliceGeometry(voxel, recon_size), attrs)

    def _read_kspace(self, index: int) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            k = f["kspace"][index]
        return k[None] if self.format == "fastmri-singlecoil" else k

    def mask(self) -> np.ndarray | None:
        return self._mask

    def target(self, index: int) -> np.ndarray | None:
        if self._target_key is None:
            return None
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.asarray(f[self._target_key][index], dtype=np.float32)


def write_fastmri_multicoil(
    path: str | Path,
    slices,
    num_slices: int,
    shape: tuple[int, int, int],
    target_shape: tuple[int, int],
    mask: np.ndarray,
    header_xml: bytes,
    attrs: dict,
) -> Path:
    """Write a file in the fastMRI multi-coil layout, slice by slice, atomically.

    Args:
        path: output ``.h5``.
        slices: iterable yielding ``num_slices`` pairs ``(kspace (C, H, W) complex64, target
            (rows, cols) float32)``: the undersampled k-space and the fully sampled reference.
        num_slices: number of slices the iterable yields.
        shape: ``(C, H, W)``.
        target_shape: ``(rows, cols)`` of the reference images.
        mask: ``(W,)`` for 1-D or ``(H, W)`` for 2-D sampling, float32.
        header_xml: ISMRMRD XML header.
        attrs: file attributes (``acquisition``, ``acceleration``, ...); ``max`` and ``norm`` of
            the target are added.
    """
    import h5py

    from ..atomic import atomic_output

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("kspace", shape=(num_slices, *shape), dtype=np.complex64, chunks=(1, *shape))
            tg = f.create_dataset("reconstruction_rss", shape=(num_slices, *target_shape), dtype=np.float32)
            tmax, tsq, n = -np.inf, 0.0, 0
            for i, (k, t) in enumerate(slices):
                ds[i] = k
                tg[i] = t
                tmax, tsq, n = max(tmax, float(t.max())), tsq + float(np.sum(np.asarray(t, np.float64) ** 2)), n + 1
            if n != num_slices:
                raise ValueError(f"slices: expected {num_slices} slices, the iterable gave {n}")
            f.create_dataset("mask", data=np.asarray(mask, dtype=np.float32))
            f.create_dataset("ismrmrd_header", data=np.bytes_(header_xml))
            for k, v in {**attrs, "max": tmax, "norm": np.sqrt(tsq)}.items():
                f.attrs[k] = v
    return Path(path)
