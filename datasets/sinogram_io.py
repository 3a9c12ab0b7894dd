"""Sinogram files: projections plus the full acquisition geometry, so reconstruction needs nothing else.

HDF5 layout written by ``medrecon simulate ct``:

- ``sinogram``: ``(slices, views, det)`` float32 post-log line integrals (2-D beams) or
  ``(1, det_rows, views, det)`` (3-D beams);
- attribute ``geometry``: JSON of :class:`~medrecon.physics.ct.CTGeometry` (beam, angles, detector
  count and spacing, source / detector distances, voxel spacing);
- attributes ``affine`` (JSON 4×4, voxel → RAS of the image grid), ``slices`` (JSON list of source
  slice indices), ``dose``, ``electronic_sigma``, ``mu_water_per_mm``, ``source``, ``seed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import InputFileError
from ..physics.ct.geometry import CTGeometry
from .file_access import check_regular_file, open_h5


@dataclass
class SinogramFile:
    """A read sinogram file. ``sino`` is float32; ``attrs`` holds the remaining metadata."""

    path: Path
    sino: np.ndarray
    geometry: CTGeometry
    affine: np.ndarray
    slices: list[int]
    attrs: dict


def write_sinogram(path: str | Path, sino: np.ndarray, geometry: CTGeometry, affine: np.ndarray, slices: list[int], attrs: dict) -> Path:
    """Write a sinogram file atomically (see module docstring for the layout)."""
    import h5py

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("sinogram", data=np.asarray(sino, dtype=np.float32))
            f.attrs["geometry"] = geometry.to_json()
            f.attrs["affine"] = json.dumps(np.asarray(affine, dtype=float).tolist())
            f.attrs["slices"] = json.dumps([int(s) for s in slices])
            for k, v in attrs.items():
                f.attrs[k] = v
    return Path(path)


def read_sinogram(path: str | Path) -> SinogramFile:
    """Read and validate a sinogram file.

    Raises:
        InputFileError: not HDF5, no ``sinogram`` or no ``geometry``, projection count or detector
            size not matching the geometry's angles, NaN / Inf projections.
    """
    p = check_regular_file(path, "an existing sinogram .h5")
    with open_h5(p) as f:
        if "sinogram" not in f:
            raise InputFileError(p, "sinogram", "an HDF5 dataset 'sinogram'", f"keys {sorted(f.keys())}")
        if "geometry" not in f.attrs:
            raise InputFileError(p, "geometry", "a 'geometry' attribute (JSON written by medrecon simulate ct)", "no geometry")
        try:
            geom = CTGeometry.from_json(f.attrs["geometry"])
        except (ValueError, TypeError, KeyError) as err:
            raise InputFileError(p, "geometry", "a valid CT geometry", str(err)) from None
        sino = np.asarray(f["sinogram"][()], dtype=np.float32)
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k not in ("geometry", "affine", "slices")}
        affine = np.asarray(json.loads(f.attrs["affine"])) if "affine" in f.attrs else np.eye(4)
        slices = json.loads(f.attrs["slices"]) if "slices" in f.attrs else list(range(sino.shape[0]))
    expected = geom.sino_shape
    if sino.ndim != len(expected) + 1 or tuple(sino.shape[1:]) != expected:
        got = f"shape {sino.shape}"
        if sino.ndim == len(expected) + 1 and sino.shape[-2 if not geom.is_3d else -2] != geom.n_views:
            got = f"{sino.shape[-2]} projections for {geom.n_views} angles ({got})"
        raise InputFileError(p, "sinogram", f"(slices, {', '.join(map(str, expected))}) matching the geometry", got)
    if not np.all(np.isfinite(sino)):
        raise InputFileError(p, "sinogram", "finite projections", "NaN or Inf")
    return SinogramFile(p, sino, geom, affine, list(slices), attrs)
