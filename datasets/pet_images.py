"""PET activity images with their co-registered CT on the PET grid: the inputs of ``simulate pet`` and PET training.

Two sources:

- the PET/CT slice-pair ``.npz`` of the shared data (keys ``pet_nac`` ``(S, H, W)`` and ``ct``
  ``(S, H', W')``, both normalised to [0, 1]; the PET_AC_sCT set). The files carry no geometry: the
  two images are taken to cover the same field of view, PET pixels are :data:`NPZ_PIXEL_MM`, and the
  CT's normalisation is :data:`NPZ_CT_WINDOW` (an inference: air is 0, the brain-tissue peak sits at
  0.41 and the largest value at 0.98, which maps to ~15 HU and ~1,450 HU). Both assumptions are
  recorded with every sinogram simulated from such a file.
- a PET DICOM series (Bq/ml or SUVbw) or NIfTI with a CT NIfTI / DICOM series in HU, resampled
  onto the PET grid through the two affines (trilinear; voxels outside the CT are air).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError

NPZ_PIXEL_MM = 2.0  # assumed PET pixel of the npz slice pairs (a 500 mm field of view at 250²)
NPZ_CT_WINDOW = (-1024.0, 1500.0)  # assumed HU at normalised 0 and 1 in the npz CT


@dataclass
class PETImages:
    """PET slices and their CT on the same grid.

    Attributes:
        activity: ``(S, H, W)`` float32 ≥ 0, in ``unit``.
        guide_hu: ``(S, H, W)`` float32 CT in HU on the PET grid.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm of the PET grid (first slice of ``slices``).
        slices: indices of the slices in the source.
        unit: what ``activity`` is in (``normalised``, ``BQML``, ``SUVbw``, …).
        source: the PET file; ``notes``: assumptions made while reading (recorded downstream).
    """

    activity: np.ndarray
    guide_hu: np.ndarray
    affine: np.ndarray
    slices: list[int]
    unit: str
    source: str
    notes: str = ""

    @property
    def pixel_mm(self) -> float:
        """In-plane pixel size (the grid must be square-pixelled for the 2-D projector)."""
        col, row = np.linalg.norm(self.affine[:3, :2], axis=0)
        if abs(col - row) > 1e-4 * col:
            raise InputFileError(self.source, "pixel spacing", "square pixels for 2-D PET sinograms", f"{row} x {col} mm")
        return float(col)


def _pick(n: int, slices: list[int] | None, path: Path) -> list[int]:
    idx = list(range(n)) if slices is None else list(slices)
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InputFileError(path, "slices", f"indices in 0..{n - 1}", f"{bad}")
    if idx != list(range(idx[0], idx[0] + len(idx))):
        raise InputFileError(path, "slices", "a contiguous ascending range (one affine for the output)", f"{idx}")
    return idx


def _check_values(path: Path, field: str, arr: np.ndarray, nonneg: bool) -> None:
    if not np.all(np.isfinite(arr)):
        raise InputFileError(path, field, "finite values", "NaN or Inf")
    if nonneg and float(arr.min()) < 0:
        raise InputFileError(path, field, "activity >= 0", f"minimum {float(arr.min()):g}")


def resample_slices(
    values: np.ndarray, affine_src: np.ndarray, shape: tuple[int, int, int], affine_dst: np.ndarray, fill: float
) -> np.ndarray:
    """``values (S', H', W')`` on ``affine_src`` → ``(S, H, W)`` on ``affine_dst`` (trilinear; ``fill`` outside)."""
    from scipy.ndimage import map_coordinates

    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    vox = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])  # (col, row, slice, 1)
    src = np.linalg.solve(affine_src, affine_dst @ vox)[:3]  # (col, row, slice) in the source
    if values.shape[0] == 1:  # one source slice: in-plane only
        src[2] = 0.0
    out = map_coordinates(values.astype(np.float64), src[::-1], order=1, mode="constant", cval=fill)
    return out.reshape(shape).astype(np.float32)


def read_pet_ct_npz(path: str | Path, slices: list[int] | None = None) -> PETImages:
    """The shared PET/CT slice-pair ``.npz`` (see the module docstring for the assumed geometry)."""
    from .file_access import check_npz, check_regular_file

    p = check_regular_file(path, "a PET/CT .npz")
    check_npz(p, "a readable .npz without pickled objects", ("pet_nac", "ct"), np.float32)
    try:
        with np.load(p, allow_pickle=False) as f:
            missing = [k for k in ("pet_nac", "ct") if k not in f.files]
            if missing:
                raise InputFileError(p, missing[0], "arrays 'pet_nac' (S, H, W) and 'ct' (S, H', W')", f"keys {sorted(f.files)}")
            raw = {k: f[k] for k in ("pet_nac", "ct")}
        for key, arr in raw.items():  # complex values would lose their imaginary part unnoticed
            if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
                raise InputFileError(p, key, "real numbers", f"dtype {arr.dtype}")
        pet, ct = np.asarray(raw["pet_nac"], dtype=np.float32), np.asarray(raw["ct"], dtype=np.float32)
    except InputFileError:
        raise
    except (ValueError, OSError) as err:
        raise InputFileError(p, "file", "a readable .npz without pickled objects", str(err)) from None
    if pet.ndim != 3 or ct.ndim != 3 or pet.shape[0] != ct.shape[0]:
        raise InputFileError(p, "ct", f"one CT slice per PET slice, (S, H', W') with S = {pet.shape[0]}", f"pet {pet.shape}, ct {ct.shape}")
    idx = _pick(pet.shape[0], slices, p)
    _check_values(p, "pet_nac", pet[idx], nonneg=True)
    _check_values(p, "ct", ct[idx], nonneg=False)
    h, w = pet.shape[1:]
    fov = NPZ_PIXEL_MM * w
    pet_aff = np.diag([NPZ_PIXEL_MM, NPZ_PIXEL_MM, NPZ_PIXEL_MM, 1.0])
    pet_aff[:3, 3] = [-(w - 1) / 2 * NPZ_PIXEL_MM, -(h - 1) / 2 * NPZ_PIXEL_MM, 0.0]
    cpx = fov / ct.shape[2]
    ct_aff = np.diag([cpx, cpx, NPZ_PIXEL_MM, 1.0])
    ct_aff[:3, 3] = [-(ct.shape[2] - 1) / 2 * cpx, -(ct.shape[1] - 1) / 2 * cpx, 0.0]
    lo, hi = NPZ_CT_WINDOW
    guide = np.stack([resample_slices(lo + (hi - lo) * ct[[i]], ct_aff, (1, h, w), pet_aff, lo)[0] for i in idx])
    affine = pet_aff.copy()
    affine[:3, 3] += affine[:3, 2] * idx[0]
    notes = f"npz geometry assumed: PET pixel {NPZ_PIXEL_MM} mm, same field of view as the CT, CT normalised over {NPZ_CT_WINDOW} HU"
    return PETImages(pet[idx], guide, affine, idx, "normalised", str(p), notes)


def read_pet_with_ct(pet_path: str | Path, ct_path: str | Path, slices: list[int] | None = None, unit: str = "as-stored") -> PETImages:
    """A PET DICOM series / file or NIfTI (:func:`~medrecon.datasets.pet_dicom.read_pet`) and a CT
    (NIfTI or DICOM series, HU) resampled onto the PET grid through the two affines.

    Args:
        unit: ``as-stored`` (a DICOM series' own unit; a NIfTI's unit recorded by medrecon),
            ``BQML`` or ``SUVbw`` (DICOM: converted with the SUV tags; NIfTI: the values' unit).
    """
    from .ct_volume import read_ct
    from .pet_dicom import read_pet

    pet = read_pet(pet_path, unit)
    p = Path(pet_path)
    idx = _pick(pet.values.shape[0], slices, p)
    _check_values(p, "image", pet.values[idx], nonneg=True)
    ct = read_ct(ct_path)
    affine = pet.affine.copy()
    affine[:3, 3] += affine[:3, 2] * idx[0]
    guide = resample_slices(ct.hu, ct.affine, (len(idx), *pet.values.shape[1:]), affine, -1000.0)
    if float(np.ptp(guide)) == 0:
        raise InputFileError(ct_path, "image", "a CT overlapping the PET field of view", "no overlap (or a blank CT) after resampling")
    return PETImages(pet.values[idx], guide, affine, idx, pet.unit, str(p))
