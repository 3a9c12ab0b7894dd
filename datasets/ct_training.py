"""Training slices for CT priors: DICOM series and NIfTI volumes in HU, on the priors' fixed scale.

Each file or DICOM folder is read as a CT volume (:func:`~medrecon.datasets.ct_volume.read_ct`);
its axial slices, minus any held-out range, become ``x = HU / 1000`` (air −1, water 0; see
:data:`~medrecon.physics.ct.transmission.HU_PER_UNIT`), clipped to the CT range [−1024, 3071] HU.
All files must share one square pixel size (the simulator projects at that size, and the prior is
tied to it); files of different matrix sizes are padded, centred, with air.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..physics.ct.transmission import HU_PER_UNIT
from .ct_volume import read_ct

HU_RANGE = (-1024.0, 3071.0)


@dataclass(frozen=True)
class CTTrainingSlices:
    """Axial training slices on the prior's scale.

    Attributes:
        images: ``(N, H, W)`` float32, ``HU / 1000``.
        pixel_mm: the common in-plane pixel size.
        sources: per file, ``(name, slices kept)``.
        holdout: per file with a held-out range, ``{"path": name, "slices": [first, last]}``.
    """

    images: np.ndarray
    pixel_mm: float
    sources: list[tuple[str, int]]
    holdout: list[dict]


def load_ct_training_slices(paths: list[str | Path], holdout: dict[str, tuple[int, int]] | None = None) -> CTTrainingSlices:
    """Read CT volumes and keep their axial slices outside the held-out ranges.

    Args:
        paths: DICOM series folders, DICOM files or NIfTI volumes in HU.
        holdout: ``{path: (first, last)}`` inclusive slice ranges left out of training (the keys are
            the strings of ``paths``).

    Raises:
        InputFileError: unreadable files, non-square or mismatched pixel sizes, a held-out range
            outside the volume, no slices left.
    """
    holdout = dict(holdout or {})
    unknown = set(holdout) - {str(p) for p in paths}
    if unknown:
        raise InputFileError(sorted(unknown)[0], "data.holdout", f"one of data.paths {[str(p) for p in paths]}", "a path not in data.paths")
    vols, pixel, sources, held = [], None, [], []
    for p in paths:
        vol = read_ct(p)
        _, row, col = vol.spacing_mm
        if abs(row - col) > 1e-3 * col:
            raise InputFileError(p, "pixel spacing", "square pixels", f"{row:.4g} x {col:.4g} mm")
        if pixel is not None and abs(col - pixel) > 0.02 * pixel:
            raise InputFileError(p, "pixel spacing", f"{pixel:.4g} mm like the other training files (resample first)", f"{col:.4g} mm")
        pixel = col if pixel is None else pixel
        keep = np.ones(vol.hu.shape[0], bool)
        if str(p) in holdout:
            a, b = (int(v) for v in holdout[str(p)])
            if not 0 <= a <= b < vol.hu.shape[0]:
                raise InputFileError(p, "data.holdout", f"a slice range inside 0..{vol.hu.shape[0] - 1}", f"[{a}, {b}]")
            keep[a : b + 1] = False
            held.append({"path": Path(p).name, "slices": [a, b]})
        if keep.any():
            vols.append(np.clip(vol.hu[keep], *HU_RANGE) / HU_PER_UNIT)
        sources.append((Path(p).name, int(keep.sum())))
    if not vols:
        raise InputFileError(paths[0], "slices", "at least one training slice outside the held-out ranges", "none")
    h, w = max(v.shape[1] for v in vols), max(v.shape[2] for v in vols)
    out = []
    for v in vols:
        dh, dw = h - v.shape[1], w - v.shape[2]
        out.append(np.pad(v, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)), constant_values=HU_RANGE[0] / HU_PER_UNIT))
    return CTTrainingSlices(np.concatenate(out).astype(np.float32), float(pixel), sources, held)
