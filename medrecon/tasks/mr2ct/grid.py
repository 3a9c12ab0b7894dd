"""The voxel grid a translation prior was trained on, laid over an input MR, and the way back.

A synthetic-CT prior is tied to its training grid: the anatomical orientation of the voxel axes
(``axcodes``, e.g. RAS: slices are axial), the in-plane pixel size and the slice spacing (its
2.5-D condition spans neighbouring slices). An MR on any other grid is resampled (trilinear) onto
an axis-aligned grid with the prior's orientation and spacing that covers the MR's field of view;
the synthetic CT is resampled back onto the MR's own grid. An MR already on such a grid is used
as it is (no interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...datasets.pet_images import resample_slices

_AXES = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}


@dataclass(frozen=True)
class Grid:
    """``shape (slices, rows, cols)`` and the 4×4 affine voxel ``(col, row, slice)`` → RAS mm."""

    shape: tuple[int, int, int]
    affine: np.ndarray


def prior_grid(shape: tuple[int, int, int], affine: np.ndarray, axcodes: list[str], spacing_mm: tuple[float, float, float]) -> Grid:
    """The prior's grid over a volume ``shape (slices, rows, cols)`` with ``affine``.

    Args:
        axcodes: directions of the prior's voxel axes ``(col, row, slice)``, e.g. ``["R", "A", "S"]``.
        spacing_mm: the prior's ``(col, row, slice)`` spacing.

    Returns:
        The volume's own grid when it already has that orientation and spacing (within 1 %) with
        axis-aligned axes; otherwise an axis-aligned grid covering the volume's voxel corners.
    """
    affine = np.asarray(affine, dtype=np.float64)
    rot = np.zeros((3, 3))
    for c, code in enumerate(axcodes):
        axis, sign = _AXES[code]
        rot[axis, c] = sign * spacing_mm[c]
    if np.allclose(affine[:3, :3], rot, rtol=0, atol=1e-2 * min(spacing_mm)):
        return Grid(tuple(int(n) for n in shape), affine)
    s, r, c = shape
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, c - 0.5) for j in (-0.5, r - 0.5) for k in (-0.5, s - 0.5)]).T
    ras = (affine @ corners)[:3]
    lo, hi = ras.min(axis=1), ras.max(axis=1)
    sizes, origin = [], np.zeros(3)
    for c_idx, code in enumerate(axcodes):
        axis, sign = _AXES[code]
        n = max(1, int(np.ceil((hi[axis] - lo[axis]) / spacing_mm[c_idx] - 1e-6)))
        sizes.append(n)
        centre = (lo[axis] + hi[axis]) / 2
        # the grid is centred on the field of view
        origin[axis] = centre - sign * (n - 1) / 2 * spacing_mm[c_idx]
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = origin
    return Grid((sizes[2], sizes[1], sizes[0]), out)


def resample(values: np.ndarray, src_affine: np.ndarray, grid: Grid, fill: float) -> np.ndarray:
    """``values (slices, rows, cols)`` on ``src_affine`` → ``grid`` (trilinear; ``fill`` outside); a copy when the grids agree."""
    if tuple(values.shape) == grid.shape and np.allclose(src_affine, grid.affine, atol=1e-4):
        return np.array(values, dtype=np.float32)
    return resample_slices(np.asarray(values, dtype=np.float32), np.asarray(src_affine, dtype=np.float64), grid.shape, grid.affine, fill)
