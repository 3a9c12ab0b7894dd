"""Training slices for PET priors: activity on the priors' scale, with the co-registered CT as the guide.

Each slice's activity is divided by :data:`PET_MEAN_SCALE` times its mean over the image, so that
typical uptake peaks sit near 1 whatever the unit, dose or calibration (on the shared FDG slices
the 99.5th percentile is 15-27 times the mean, median 19). The mean is what reconstruction can
measure most precisely from the counts, which is why it, and not a percentile, sets the scale.
The guide is the CT on the PET grid in ``HU / 1000`` (the CT priors' scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputFileError
from .pet_images import read_pet_ct_npz

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


def load_pet_training_slices(paths: list[str], min_fraction: float = 0.0) -> PETTrainingSlices:
    """Every slice of the PET/CT ``.npz`` files ``paths`` (all of one pixel size and matrix).

    Slices whose mean activity is below ``min_fraction`` of the brightest slice's are dropped.
    """
    images, guides, means, sources, pixel, shape = [], [], [], [], None, None
    for p in paths:
        im = read_pet_ct_npz(p)
        if shape is not None and (im.activity.shape[1:] != shape or abs(im.pixel_mm - pixel) > 1e-6):
            raise InputFileError(
                p, "images", f"{shape} slices of {pixel} mm like the first file", f"{im.activity.shape[1:]} of {im.pixel_mm} mm"
            )
        shape, pixel = im.activity.shape[1:], im.pixel_mm
        scale = pet_scale(im.activity)
        images.append(im.activity / scale[:, None, None])
        means.append(scale / PET_MEAN_SCALE)
        guides.append(im.guide_hu[:, None] / 1000.0)
        sources.append((str(p), im.activity.shape[0]))
    x, g = np.concatenate(images).astype(np.float32), np.concatenate(guides).astype(np.float32)
    raw = np.concatenate(means)
    keep = raw >= min_fraction * raw.max()
    return PETTrainingSlices(x[keep], g[keep], float(pixel), sources)
