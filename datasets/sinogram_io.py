"""Sinogram files: projections plus the full acquisition geometry, so reconstruction needs nothing else.

HDF5 layout written by ``medrecon simulate ct``:

- ``sinogram``: ``(slices, views, det)`` float32 post-log line integrals (2-D beams) or
  ``(1, det_rows, views, det)`` (3-D beams);
- attribute ``geometry``: JSON of :class:`~medrecon.physics.ct.CTGeometry` (beam, angles, detector
  count and spacing, source / detector distances, voxel spacing);
- attributes ``affine`` (JSON 4×4, voxel → RAS of the image grid), ``slices`` (JSON list of source
  slice indices), ``dose``, ``electronic_sigma``, ``mu_water_per_mm``, ``source`` (the source's
  name, never a machine path), ``source_relative`` (its path relative to the sinogram file's
  folder, so reconstruction can refuse to write over it), ``seed``;
- optional dataset ``source_headers``: the DICOM source's headers of the simulated slices as DICOM
  JSON (pixel data dropped), so a reconstruction written as DICOM joins its patient's study and
  references its source images without the source files (read back with
  ``pydicom.Dataset.from_json``: JSON, nothing unpickles).

PET files (``medrecon simulate pet``) have the same layout with attribute ``modality = "PET"``:
``sinogram`` holds the prompt counts, and the datasets ``multiplicative`` (normalisation ×
attenuation factors) and ``background`` (expected randoms + scatter), both ``(slices, views, det)``,
and ``guide_hu`` (the co-registered CT on the PET grid, ``(slices, rows, cols)``) sit beside it;
attribute ``calibration`` (JSON list, per slice) converts reconstructed activity to the source's
units. A file without ``modality`` is CT.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import InputFileError
from ..memory import check_allocation
from ..physics.ct.geometry import CTGeometry
from .file_access import check_regular_file, h5_dataset, open_h5, read_dataset


@dataclass
class SinogramFile:
    """A read sinogram file. ``sino`` is float32; ``attrs`` holds the remaining metadata."""

    path: Path
    sino: np.ndarray
    geometry: CTGeometry
    affine: np.ndarray
    slices: list[int]
    attrs: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    modality: str = "CT"
    source_headers: list = field(default_factory=list)


def source_relative(source: str | Path, sinogram: str | Path) -> dict[str, str]:
    """``{"source_relative": path of source relative to the sinogram's folder}`` (empty where there is none, e.g. another drive)."""
    import os

    try:
        return {"source_relative": os.path.relpath(Path(source).absolute(), Path(sinogram).absolute().parent)}
    except ValueError:
        return {}


def source_path(sf: SinogramFile) -> Path | None:
    """Where the sinogram's source is: ``source_relative``, or in files of earlier versions an absolute
    ``source`` (None when neither is recorded)."""
    rel = sf.attrs.get("source_relative")
    if rel:
        return sf.path.parent / str(rel)
    old = str(sf.attrs.get("source", ""))
    return Path(old) if old and Path(old).is_absolute() else None


def headers_to_json(headers) -> bytes:
    """DICOM headers (pydicom datasets) as one DICOM-JSON array, without pixel data."""
    out = []
    for ds in headers:
        ds = ds.copy()
        for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if tag in ds:
                delattr(ds, tag)
        out.append(ds.to_json_dict(bulk_data_threshold=1 << 20))
    return json.dumps(out).encode()


def headers_from_json(path: Path, data: bytes) -> list:
    """The datasets :func:`headers_to_json` wrote; refused with one line when they are not DICOM JSON."""
    import pydicom

    try:
        items = json.loads(bytes(data).decode())
        if not isinstance(items, list):
            raise ValueError("not a list")
        headers = [pydicom.Dataset.from_json(item) for item in items]
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise InputFileError(path, "source_headers", "DICOM JSON of the source slices' headers", f"unreadable ({err})") from None
    for i, ds in enumerate(headers):
        ds.filename = f"{path} (source_headers[{i}])"  # what errors about a header name
    return headers


def write_sinogram(
    path: str | Path,
    sino: np.ndarray,
    geometry: CTGeometry,
    affine: np.ndarray,
    slices: list[int],
    attrs: dict,
    arrays: dict[str, np.ndarray] | None = None,
    modality: str = "CT",
    source_headers=(),
) -> Path:
    """Write a sinogram file atomically (see module docstring for the layout).

    ``arrays`` are further float32 datasets whose first axis is the slice (PET: ``multiplicative``,
    ``background``, ``guide_hu``); ``source_headers`` the DICOM headers of the simulated slices.
    """
    import h5py

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("sinogram", data=np.asarray(sino, dtype=np.float32))
            f.attrs["geometry"] = geometry.to_json()
            f.attrs["affine"] = json.dumps(np.asarray(affine, dtype=float).tolist())
            f.attrs["slices"] = json.dumps([int(s) for s in slices])
            f.attrs["modality"] = modality
            for name, arr in (arrays or {}).items():
                f.create_dataset(name, data=np.asarray(arr, dtype=np.float32))
            if len(source_headers):
                f.create_dataset("source_headers", data=np.frombuffer(headers_to_json(source_headers), dtype=np.uint8))
            for k, v in attrs.items():
                f.attrs[k] = v
    return Path(path)


def _json_attr(path: Path, attrs, key: str, expected: str, valid, default):
    """The JSON attribute ``key`` parsed and checked by ``valid(value)``, ``default`` when absent."""
    if key not in attrs:
        return default
    text = attrs[key]
    text = text.decode() if isinstance(text, bytes) else text
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        value = None
    if value is None or not valid(value):
        shown = repr(text) if len(repr(text)) <= 80 else repr(text)[:77] + "..."
        raise InputFileError(path, key, expected, shown)
    return value


def _is_affine(value) -> bool:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return arr.shape == (4, 4) and bool(np.all(np.isfinite(arr)))


def _is_index_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)


def read_sinogram(path: str | Path, modality: str = "CT", arrays: tuple[str, ...] = ()) -> SinogramFile:
    """Read and validate a sinogram file of the given ``modality``.

    Args:
        path: the ``.h5``.
        modality: ``CT`` or ``PET``; a file of the other modality is refused.
        arrays: further datasets that must be present (each ``(slices, ...)``, finite), e.g. PET's
            ``multiplicative`` and ``background``; optional ones (``guide_hu``) are read when present.

    Raises:
        InputFileError: not HDF5, the other modality, no ``sinogram`` or no ``geometry``, projection
            count or detector size not matching the geometry's angles, NaN / Inf values, a required
            dataset missing or of another shape, a group or text where a dataset of numbers belongs,
            ``affine`` / ``slices`` attributes that are not the JSON described above, a
            ``mu_water_per_mm`` that is not a positive number; a dataset, or the volume the
            geometry's image size gives (slices × image shape, float32), larger than the memory budget.
    """
    p = check_regular_file(path, "an existing sinogram .h5")
    with open_h5(p) as f:
        got = f.attrs.get("modality", "CT")
        got = got.decode() if isinstance(got, bytes) else str(got)
        if got != modality:
            raise InputFileError(p, "modality", f"a {modality} sinogram (medrecon simulate {modality.lower()})", f"a {got} sinogram")
        ds = h5_dataset(p, f, "sinogram", "an HDF5 dataset 'sinogram'")
        if "geometry" not in f.attrs:
            raise InputFileError(p, "geometry", "a 'geometry' attribute (JSON written by medrecon simulate ct)", "no geometry")
        try:
            geom = CTGeometry.from_json(f.attrs["geometry"])
        except (ValueError, TypeError, KeyError) as err:
            raise InputFileError(p, "geometry", "a valid CT geometry", str(err)) from None
        n_slices = ds.shape[0] if ds.ndim else 0
        check_allocation(((n_slices, *geom.image_shape), np.float32), p, "geometry", what="a reconstructed volume")
        sino = read_dataset(p, ds, "sinogram", np.float32)
        attrs = {
            k: (v.decode() if isinstance(v, bytes) else v)
            for k, v in f.attrs.items()
            if k not in ("geometry", "affine", "slices", "modality")
        }
        extra = {}
        for name in sorted(set(arrays) | ({"guide_hu"} & set(f.keys()))):
            if name not in f:
                raise InputFileError(p, name, f"an HDF5 dataset '{name}'", f"keys {sorted(f.keys())}")
            extra[name] = read_dataset(p, f[name], name, np.float32)
        headers = []
        if "source_headers" in f:
            headers = headers_from_json(p, read_dataset(p, f["source_headers"], "source_headers", np.uint8).tobytes())
        affine = _json_attr(p, f.attrs, "affine", "a JSON 4x4 matrix of finite numbers", _is_affine, np.eye(4).tolist())
        slices = _json_attr(p, f.attrs, "slices", "a JSON list of slice indices >= 0", _is_index_list, list(range(n_slices)))
        affine = np.asarray(affine, dtype=float)
    expected = geom.sino_shape
    if sino.ndim != len(expected) + 1 or tuple(sino.shape[1:]) != expected:
        got = f"shape {sino.shape}"
        if sino.ndim == len(expected) + 1 and sino.shape[-2 if not geom.is_3d else -2] != geom.n_views:
            got = f"{sino.shape[-2]} projections for {geom.n_views} angles ({got})"
        raise InputFileError(p, "sinogram", f"(slices, {', '.join(map(str, expected))}) matching the geometry", got)
    if not np.all(np.isfinite(sino)):
        raise InputFileError(p, "sinogram", "finite projections", "NaN or Inf")
    if not geom.is_3d and len(slices) != sino.shape[0]:
        raise InputFileError(p, "slices", f"one index per sinogram slice ({sino.shape[0]})", f"{len(slices)} indices")
    mu_w = attrs.get("mu_water_per_mm")
    if mu_w is not None and not (isinstance(mu_w, (int, float, np.number)) and math.isfinite(float(mu_w)) and float(mu_w) > 0):
        shown = mu_w.item() if isinstance(mu_w, np.generic) else mu_w
        raise InputFileError(p, "mu_water_per_mm", "a finite number > 0 (water's attenuation per mm)", repr(shown))
    for name, arr in extra.items():
        want = sino.shape if name in arrays else (sino.shape[0], *geom.image_shape)
        if arr.shape != want:
            raise InputFileError(p, name, f"shape {want}", f"shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InputFileError(p, name, "finite values", "NaN or Inf")
    if headers and len(headers) != sino.shape[0]:
        raise InputFileError(p, "source_headers", f"one header per sinogram slice ({sino.shape[0]})", f"{len(headers)}")
    return SinogramFile(p, sino, geom, affine, list(slices), attrs, extra, modality, headers)
