"""Training B-scans for OCT priors: noisy scans only, on a fixed intensity scale the prior records.

An OCT prior sees ``x = T(v) / T(full_scale)`` of each stored value ``v``, where ``T`` is the
intensity transform and ``full_scale`` the data type's maximum (255 for 8-bit, 65535 for 16-bit;
for float data the largest training value):

- ``linear``: ``T(v) = v`` — for B-scans stored log-compressed already (display images, the Duke
  set), where speckle is close to additive and white;
- ``log``: ``T(v) = log(1 + v)`` — for linear-amplitude B-scans, where speckle is multiplicative
  and the logarithm makes it additive.

The transform, full scale and stored data type go into the prior's JSON
(:func:`oct_prior_info`); denoising applies the same transform and refuses B-scans of another type.
No clean reference is read: the prior is trained on the noisy B-scans as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputFileError
from .oct_images import read_oct, stored_dtypes

OCT_TRANSFORMS = ("linear", "log")
OCT_NORMALISATION = "OCT: transform(stored value) / transform(full scale)"


def oct_full_scale(dtype: np.dtype, values: np.ndarray) -> float:
    """The full scale of stored values of ``dtype``: the integer type's maximum, else the largest value."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else float(np.max(values))


def to_prior_scale(stored: np.ndarray, transform: str, full_scale: float) -> np.ndarray:
    """Stored B-scan values → the prior's scale (see the module docstring); float32, same shape."""
    v = np.asarray(stored, dtype=np.float64)
    if transform == "log":
        return (np.log1p(np.clip(v, 0, None)) / np.log1p(full_scale)).astype(np.float32)
    return (v / full_scale).astype(np.float32)


def from_prior_scale(x: np.ndarray, transform: str, full_scale: float) -> np.ndarray:
    """Inverse of :func:`to_prior_scale` (float64)."""
    x = np.asarray(x, dtype=np.float64)
    if transform == "log":
        return np.expm1(x * np.log1p(full_scale))
    return x * full_scale


@dataclass(frozen=True)
class OCTTrainingBScans:
    """Attributes: ``images (N, H, W)`` float32 on the prior's scale; ``info`` for the prior's JSON; ``notes``."""

    images: np.ndarray
    info: dict
    notes: list[str]


def oct_prior_info(transform: str, full_scale: float, dtype: np.dtype, sources: list[str]) -> dict:
    """The ``prior.json`` entries of an OCT prior."""
    return {
        "modality": "OCT",
        "oct": {"transform": transform, "full_scale": full_scale, "stored_dtype": np.dtype(dtype).name, "sources": sources},
    }


def load_oct_training_bscans(paths: list[str], transform: str = "linear") -> OCTTrainingBScans:
    """Every B-scan of ``paths`` (TIFF / PNG files, folders of them, NIfTI volumes; all of one data type).

    B-scans of different sizes are cut to the smallest height and width among them (centred),
    with a note; training draws random patches, so this loses only borders.

    Raises:
        InputFileError: an unreadable input (:func:`~medrecon.datasets.oct_images.read_oct`), an
            unknown transform, or files of different data types.
    """
    if transform not in OCT_TRANSFORMS:
        raise InputFileError(paths[0], "transform", f"one of {OCT_TRANSFORMS}", repr(transform))
    stacks, dtype, notes, sources = [], None, [], []
    for p in paths:
        images = read_oct(p)
        kinds = stored_dtypes(images)
        if len(kinds) > 1 or (dtype is not None and kinds != {dtype}):
            got = ", ".join(sorted(k.name for k in kinds))
            raise InputFileError(p, "data type", f"{dtype.name if dtype else 'one type'} like the other training B-scans", got)
        dtype = next(iter(kinds))
        notes += [f"{p}: {n}" for n in images.notes]
        stacks.append(images.bscans)
        sources.append(f"{images.source.name} ({len(images.bscans)} B-scans)")
    h = min(s.shape[1] for s in stacks)
    w = min(s.shape[2] for s in stacks)
    if any(s.shape[1:] != (h, w) for s in stacks):
        notes.append(f"B-scans of different sizes cut (centred) to {h}x{w}")
    cut = [s[:, (s.shape[1] - h) // 2 : (s.shape[1] - h) // 2 + h, (s.shape[2] - w) // 2 : (s.shape[2] - w) // 2 + w] for s in stacks]
    stored = np.concatenate(cut)
    full = oct_full_scale(dtype, stored)
    return OCTTrainingBScans(to_prior_scale(stored, transform, full), oct_prior_info(transform, full, dtype, sources), notes)
