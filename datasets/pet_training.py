"""Training slices for PET priors: activity on the priors' scale, with the co-registered CT as the guide.

Each slice's activity is divided by :data:`PET_MEAN_SCALE` times its mean over the image, so that
typical uptake peaks sit near 1 whatever the unit, dose or calibration (on the shared FDG slices
the 99.5th percentile is 15-27 times the mean, median 19). The mean is what reconstruction can
measure most precisely from the counts, which is why it, and not a percentile, sets the scale.
The guide is the CT on the PET grid in ``HU / 1000`` (the CT priors' scale).

Sources: PET/CT slice-pair ``.npz`` files (the CT stored with each slice), or PET volumes (NIfTI,
a DICOM series or file, as stored) each with its CT (NIfTI or DICOM series in HU) resampled onto
the PET grid (:func:`~medrecon.datasets.pet_images.read_pet_with_ct`), or PET volumes alone for an
unguided prior. Slices without activity (the ends of a volume) are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputFileError
from .pet_images import PETImages, read_pet_ct_npz

PET_MEAN_SCALE = 20.0
PET_NORMALISATION = "activity / (20 x the slice's mean activity)"


def pet_scale(activity: np.ndarray) -> np.ndarray:
    """Per-slice divisor ``(S,)`` of :data:`PET_NORMALISATION` for ``(S, H, W)`` activity."""
    return PET_MEAN_SCALE * np.asarray(activity, dtype=np.float64).reshape(activity.shape[0], -1).mean(axis=1)


@dataclass(frozen=True)
class PETTrainingSlices:
    """Attributes: ``images (N, H, W)`` and ``guides (N, 1, H, W)`` float32 on the priors' scales, ``pixel_mm``, ``sources``."""

    images: np.ndarray
    guides: np.ndarray
    pixel_mm: float
    sources: list[tuple[str, int]]


def _recorded_unit(path: str) -> str | None:
    from .pet_dicom import read_pet_nifti

    try:
        return read_pet_nifti(path, "as-stored").unit
    except InputFileError as err:
        if err.field == "descrip":
            return None
        raise


def _read(path: str, ct: str | None) -> PETImages:
    """One source's slices: an ``.npz`` of PET/CT pairs, a PET volume with its CT, or a PET volume alone (blank guide)."""
    from .pet_dicom import read_pet
    from .pet_images import read_pet_with_ct

    if path.lower().endswith(".npz"):
        if ct is not None:
            raise InputFileError(path, "data.condition.paths", "no CT for a PET/CT .npz (it stores its own)", repr(ct))
        return read_pet_ct_npz(path)
    # the unit does not matter (each slice is divided by its mean): a NIfTI without one is read as it is
    nifti = path.lower().endswith((".nii", ".nii.gz"))
    unit = "BQML" if nifti and _recorded_unit(path) is None else "as-stored"
    if ct is not None:
        return read_pet_with_ct(path, ct, unit=unit)
    vol = read_pet(path, unit)
    keep = list(range(vol.values.shape[0]))
    return PETImages(vol.values, np.full(vol.values.shape, -1000.0, np.float32), vol.affine, keep, vol.unit, str(path))


def load_pet_training_slices(paths: list[str], min_fraction: float = 0.0, ct_paths: list[str] | None = None) -> PETTrainingSlices:
    """Every slice with activity of the PET sources ``paths`` (all of one pixel size and matrix).

    Args:
        paths: PET/CT ``.npz`` files or PET volumes (NIfTI, DICOM series / file).
        min_fraction: drop slices whose mean activity is below this fraction of the brightest slice's.
        ct_paths: the CT (NIfTI or DICOM series, HU) of each PET volume, one per path, or None.
    """
    images, guides, means, sources, pixel, shape = [], [], [], [], None, None
    for i, p in enumerate(paths):
        im = _read(str(p), None if ct_paths is None else str(ct_paths[i]))
        active = im.activity.reshape(im.activity.shape[0], -1).mean(axis=1) > 0
        if not active.any():
            raise InputFileError(p, "activity", "at least one slice with activity", "none")
        if shape is not None and (im.activity.shape[1:] != shape or abs(im.pixel_mm - pixel) > 1e-6):
            raise InputFileError(
                p, "images", f"{shape} slices of {pixel} mm like the first file", f"{im.activity.shape[1:]} of {im.pixel_mm} mm"
            )
        shape, pixel = im.activity.shape[1:], im.pixel_mm
        activity, guide = im.activity[active], im.guide_hu[active]
        scale = pet_scale(activity)
        images.append(activity / scale[:, None, None])
        means.append(scale / PET_MEAN_SCALE)
        guides.append(guide[:, None] / 1000.0)
        sources.append((str(p), int(active.sum())))
    x, g = np.concatenate(images).astype(np.float32), np.concatenate(guides).astype(np.float32)
    raw = np.concatenate(means)
    keep = raw >= min_fraction * raw.max()
    return PETTrainingSlices(x[keep], g[keep], float(pixel), sources)
