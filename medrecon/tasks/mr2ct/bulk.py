"""Bulk-density synthetic CT: air, soft tissue and bone classes from MR thresholds, each given one HU value.

The clinical fallback of MR-only planning (no learned model): on the MR divided by its
:func:`~medrecon.datasets.mr_volume.mr_scale`,

- the head is, per slice, the largest connected region above ``head_threshold`` with its holes
  filled (:func:`~medrecon.evaluation.ct_metrics.body_mask`); outside it is air;
- bone is the part of the head darker than ``bone_threshold`` and within ``bone_depth_mm`` of the
  head's outline (on T1, cortical bone is dark, and so are the ventricles deep inside, which the
  depth limit keeps out);
- everything else in the head is soft tissue.

No library offers this; it is a few array operations on SciPy's distance transform.
"""

from __future__ import annotations

import numpy as np

from ...evaluation.ct_metrics import body_mask
from .config import TranslateConfig

AIR_HU = -1000.0


def bulk_density_ct(mr_normalised: np.ndarray, pixel_mm: tuple[float, float], cfg: TranslateConfig) -> np.ndarray:
    """``(slices, rows, cols)`` MR on the :data:`~medrecon.datasets.mr_volume.MR_NORMALISATION` scale → HU, same shape.

    Args:
        mr_normalised: the MR divided by its scale.
        pixel_mm: ``(row, col)`` pixel size (the depth is measured in mm within each slice).
        cfg: thresholds and class values (``head_threshold``, ``bone_threshold``, ``bone_depth_mm``,
            ``soft_tissue_hu``, ``bone_hu``).
    """
    from scipy.ndimage import distance_transform_edt

    v = np.asarray(mr_normalised, dtype=np.float32)
    head = body_mask(v, cfg.head_threshold)
    out = np.full(v.shape, AIR_HU, dtype=np.float32)
    for k in range(v.shape[0]):
        if not head[k].any():
            continue
        depth = distance_transform_edt(head[k], sampling=pixel_mm)
        bone = head[k] & (v[k] < cfg.bone_threshold) & (depth <= cfg.bone_depth_mm)
        out[k][head[k]] = cfg.soft_tissue_hu
        out[k][bone] = cfg.bone_hu
    return out
