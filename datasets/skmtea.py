"""SKM-TEA raw-data-track HDF5 files (``files_recon_calib-24``), read lazily per hybrid slice.

Layout (SKM-TEA ``DATASET.md``): the 3-D k-space was inverse-Fourier transformed along the readout,
giving hybrid k-space ``(x, ky, kz)``; each ``x`` is a 2-D ``(ky, kz)`` reconstruction problem.

- ``kspace``: ``(Nx, Ny, Nz, echoes, coils)`` complex64, fully sampled;
- ``maps``: ``(Nx, Ny, Nz, coils, maps)`` complex64 (JSENSE, 24×24 calibration);
- ``target``: ``(Nx, Ny, Nz, echoes, maps)`` complex64 SENSE reconstruction;
- ``masks`` (optional group): 2-D ``(Ny, Nz)`` undersampling masks, e.g. ``poisson_6x``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .file_access import open_h5, read_dataset
from .kspace_source import KSpaceSource, SliceGeometry, check_mask_shape


class SKMTEAFile(KSpaceSource):
    """One SKM-TEA scan; slice ``i`` is the hybrid slice ``x = i`` of the chosen echo.

    Args:
        path: the ``.h5`` file.
        echo: which echo (0 or 1) to expose.
        mask_key: name of a mask in the ``masks`` group to apply (``None``: fully sampled).
        voxel_size_mm: ``(ky, kz, x)`` spacing in mm. The h5 files do not store it; take it from the
            scan's ``voxel_spacing`` in the SKM-TEA annotation JSON (default: 1 mm isotropic).
    """

    def __init__(
        self,
        path: str | Path,
        echo: int = 0,
        mask_key: str | None = None,
        voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        p = Path(path)
        with open_h5(p) as f:
            for key in ("kspace", "maps"):
                if key not in f:
                    raise InputFileError(p, key, f"an HDF5 dataset '{key}' (SKM-TEA layout)", f"keys {sorted(f.keys())}")
            ds = f["kspace"]
            if ds.ndim != 5:
                raise InputFileError(p, "kspace", "(x, ky, kz, echoes, coils)", f"shape {ds.shape}")
            if not np.issubdtype(ds.dtype, np.complexfloating):
                raise InputFileError(p, "kspace", "complex64 k-space", f"dtype {ds.dtype}")
            nx, ny, nz, ne, nc = ds.shape
            if nc == 0:
                raise InputFileError(p, "kspace", "at least one coil", f"shape {ds.shape}")
            if not 0 <= echo < ne:
                raise InputFileError(p, "echo", f"0..{ne - 1}", str(echo))
            mshape = f["maps"].shape
            if len(mshape) != 5 or mshape[:4] != (nx, ny, nz, nc):
                raise InputFileError(p, "maps", f"({nx}, {ny}, {nz}, {nc}, maps)", f"shape {mshape}")
            self._has_target = "target" in f
            self._mask = None
            if mask_key is not None:
                keys = sorted(f["masks"].keys()) if "masks" in f else []
                if mask_key not in keys:
                    raise InputFileError(p, "masks", f"one of {keys}", repr(mask_key))
                self._mask = check_mask_shape(p, read_dataset(p, f["masks"][mask_key], f"masks/{mask_key}", np.float32), ny, nz)
        self.echo = echo
        super().__init__(p, "skmtea", int(nx), (int(nc), int(ny), int(nz)), SliceGeometry(voxel_size_mm, None), {"echo": echo})

    def _read_kspace(self, index: int) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            k = f["kspace"][index, :, :, self.echo, :]  # (ky, kz, coils)
        k = np.moveaxis(k, -1, 0)
        return k if self._mask is None else k * self._mask

    def mask(self) -> np.ndarray | None:
        return self._mask

    def maps(self, index: int) -> np.ndarray:
        import h5py

        with h5py.File(self.path, "r") as f:
            m = f["maps"][index, :, :, :, 0]  # (ky, kz, coils), first map
        return np.ascontiguousarray(np.moveaxis(m, -1, 0), dtype=np.complex64)

    def target(self, index: int) -> np.ndarray | None:
        if not self._has_target:
            return None
        import h5py

        with h5py.File(self.path, "r") as f:
            return np.abs(f["target"][index, :, :, self.echo, 0]).astype(np.float32)
