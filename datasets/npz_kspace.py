"""K-space stored as a NumPy ``.npz`` archive (read without pickle).

Keys: ``kspace`` ``(coils, H, W)`` or ``(slices, coils, H, W)`` complex; optional ``mask``
(``(W,)`` or ``(H, W)``), ``maps`` (same shape as ``kspace``) and ``target`` (``(H, W)`` or
``(slices, H, W)`` real).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .file_access import check_npz
from .kspace_source import KSpaceSource, SliceGeometry, check_mask_shape


class NpzKSpace(KSpaceSource):
    """An ``.npz`` file with a ``kspace`` array; loaded once (these files are small)."""

    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        expected = "a NumPy .npz archive without pickled objects"
        check_npz(p, expected)  # every array is loaded, as stored
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise InputFileError(p, "file", expected, f"unreadable ({err})") from None
        if "kspace" not in arrays:
            raise InputFileError(p, "kspace", "an array 'kspace'", f"keys {sorted(arrays)}")
        k = arrays["kspace"]
        if not np.iscomplexobj(k):
            raise InputFileError(p, "kspace", "complex k-space", f"dtype {k.dtype}")
        if k.ndim == 3:
            k = k[None]
        if k.ndim != 4:
            raise InputFileError(p, "kspace", "(coils, H, W) or (slices, coils, H, W)", f"shape {arrays['kspace'].shape}")
        s, c, h, w = k.shape
        if min(s, c, h, w) == 0:
            raise InputFileError(p, "kspace", "at least one slice and one coil of at least one row and column", f"shape {k.shape}")
        self._k = k
        self._mask = check_mask_shape(p, arrays["mask"], h, w) if "mask" in arrays else None
        self._maps = None
        if "maps" in arrays:
            m = arrays["maps"].reshape((-1,) + arrays["maps"].shape[-3:])
            if m.shape[1:] != (c, h, w) or m.shape[0] not in (1, s):
                raise InputFileError(p, "maps", f"shape {(c, h, w)} or {(s, c, h, w)}", f"shape {arrays['maps'].shape}")
            self._maps = m
        self._target = None
        if "target" in arrays:
            t = arrays["target"].reshape((-1,) + arrays["target"].shape[-2:])
            if t.shape[0] != s:
                raise InputFileError(p, "target", f"{s} slices of 2-D images", f"shape {arrays['target'].shape}")
            self._target = np.abs(t).astype(np.float32)
        super().__init__(p, "npz", int(s), (int(c), int(h), int(w)), SliceGeometry((1.0, 1.0, 1.0), None), {})

    def _read_kspace(self, index: int) -> np.ndarray:
        return self._k[index]

    def mask(self) -> np.ndarray | None:
        return self._mask

    def maps(self, index: int) -> np.ndarray | None:
        if self._maps is None:
            return None
        return self._maps[index if self._maps.shape[0] > 1 else 0].astype(np.complex64)

    def target(self, index: int) -> np.ndarray | None:
        return None if self._target is None else self._target[index]
