"""How far a posterior's per-voxel std tracks the error of its mean (any modality).

Spearman's rank correlation of std and |error| (does the std point at the worst voxels?), and the
fraction of voxels whose error lies within 2 std (≈ 0.95 for a calibrated Gaussian posterior).
"""

from __future__ import annotations

import numpy as np


def std_calibration(abs_error: np.ndarray, std: np.ndarray) -> dict[str, float]:
    """``{"std_error_spearman", "within_2std"}`` over voxels (1-D or any matching shapes)."""
    from scipy.stats import spearmanr

    e, s = np.asarray(abs_error, dtype=np.float64).ravel(), np.asarray(std, dtype=np.float64).ravel()
    if e.shape != s.shape or e.size < 2:
        raise ValueError(f"abs_error / std: expected equal sizes >= 2, got {e.size} / {s.size}")
    return {"std_error_spearman": float(spearmanr(s, e).statistic), "within_2std": float(np.mean(e <= 2 * s))}
