"""Cartesian undersampling masks.

1-D masks (phase-encode lines along the last k-space axis) reproduce the ``fastmri`` package's
``RandomMaskFunc``, ``EquispacedMaskFractionFunc`` and ``EquiSpacedMaskFunc`` bit for bit for the
same parameters and seed: they draw from a ``numpy.random.RandomState(seed)`` in the same order
(choice of (centre fraction, acceleration), then offset or uniform draws). We do not import
``fastmri`` at run time (its pins conflict with CPU-only torch); the test-suite compares against it.

2-D masks: Poisson-disc through SigPy (``sigpy.mri.poisson``) and a Gaussian variable-density
random mask (SigPy has none), both with a fully sampled calibration square.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MASK_KINDS_1D = ("random", "equispaced_fraction", "equispaced")
MASK_KINDS_2D = ("poisson", "gaussian2d")


@dataclass(frozen=True)
class LineMask:
    """A 1-D Cartesian mask and its provenance.

    Attributes:
        mask: ``(num_cols,)`` float32 array of 0/1, 1 = phase-encode line acquired.
        num_low_frequencies: number of fully sampled centre lines (the auto-calibration region).
        center_fraction: centre fraction used.
        acceleration: nominal acceleration used.
    """

    mask: np.ndarray
    num_low_frequencies: int
    center_fraction: float
    acceleration: float


def _check_fraction_accel(center_fraction: float, acceleration: float, num_cols: int) -> None:
    if not 0.0 < center_fraction < 1.0:
        raise ValueError(f"center_fraction: expected a value in (0, 1), got {center_fraction}")
    if not acceleration >= 1:
        raise ValueError(f"acceleration: expected >= 1, got {acceleration}")
    if num_cols < 2:
        raise ValueError(f"num_cols: expected >= 2 phase-encode lines, got {num_cols}")


def _center_lines(num_cols: int, num_low: int) -> np.ndarray:
    """The fastMRI centre block: ``num_low`` lines starting at ``(num_cols - num_low + 1) // 2``."""
    m = np.zeros(num_cols, dtype=np.float32)
    start = (num_cols - num_low + 1) // 2
    m[start : start + num_low] = 1.0
    return m


def line_mask(
    kind: str,
    num_cols: int,
    center_fractions: float | Sequence[float],
    accelerations: float | Sequence[float],
    seed: int | Sequence[int] | None,
    offset: int | None = None,
) -> LineMask:
    """A fastMRI-compatible 1-D undersampling mask.

    Args:
        kind: ``"random"`` (fastMRI ``RandomMaskFunc``), ``"equispaced_fraction"``
            (``EquispacedMaskFractionFunc``, used for the public multi-coil data) or ``"equispaced"``
            (``EquiSpacedMaskFunc``).
        num_cols: number of phase-encode lines (the last k-space axis).
        center_fractions: centre fraction, or several (then one pair is drawn per call, as fastMRI).
        accelerations: acceleration, or several, paired with ``center_fractions``.
        seed: seed of the ``RandomState`` (int or tuple, as fastMRI accepts); ``None`` draws from OS
            entropy (not reproducible).
        offset: first accelerated line for the equispaced kinds; drawn from the RNG when ``None``.

    Returns:
        A :class:`LineMask`; ``mask`` is ``(num_cols,)`` float32.
    """
    if kind not in MASK_KINDS_1D:
        raise ValueError(f"kind: expected one of {MASK_KINDS_1D}, got {kind!r}")
    cfs = [float(center_fractions)] if np.isscalar(center_fractions) else [float(c) for c in center_fractions]
    accs = [accelerations] if np.isscalar(accelerations) else list(accelerations)
    if len(cfs) != len(accs) or not cfs:
        raise ValueError(f"center_fractions / accelerations: expected equal non-zero lengths, got {len(cfs)} and {len(accs)}")
    rng = np.random.RandomState(seed)
    choice = rng.randint(len(cfs))  # fastMRI draws this even for a single pair
    cf, acc = cfs[choice], accs[choice]
    _check_fraction_accel(cf, acc, num_cols)
    num_low = round(num_cols * cf)
    center = _center_lines(num_cols, num_low)
    if kind == "random":
        prob = (num_cols / acc - num_low) / (num_cols - num_low)
        outer = (rng.uniform(size=num_cols) < prob).astype(np.float32)
    elif kind == "equispaced":
        if offset is None:
            offset = rng.randint(0, high=round(acc))
        outer = np.zeros(num_cols, dtype=np.float32)
        outer[offset :: int(acc)] = 1.0
    else:
        if num_low * acc >= num_cols:
            raise ValueError(
                f"center_fraction {cf} with acceleration {acc}: the centre alone ({num_low} of {num_cols} lines) "
                "already exceeds the target sampling rate"
            )
        # spacing of the outer lines so that centre + outer reach num_cols / acc lines in total
        spacing = (acc * (num_low - num_cols)) / (num_low * acc - num_cols)
        if offset is None:
            offset = rng.randint(0, high=round(spacing))
        outer = np.zeros(num_cols, dtype=np.float32)
        outer[np.around(np.arange(offset, num_cols - 1, spacing)).astype(np.uint64)] = 1.0
    return LineMask(np.maximum(center, outer).astype(np.float32), int(num_low), cf, float(acc))


def poisson_mask(shape: tuple[int, int], acceleration: float, calib: int, seed: int, crop_corner: bool = True) -> np.ndarray:
    """2-D variable-density Poisson-disc mask through SigPy.

    Args:
        shape: ``(H, W)`` k-space size.
        acceleration: target acceleration (SigPy iterates its radius to meet it).
        calib: side of the fully sampled centre square.
        seed: RNG seed (SigPy seeds NumPy's global RNG with it; the global state is restored).

    Returns:
        ``(H, W)`` float32 0/1 mask.
    """
    import sigpy.mri

    if acceleration <= 1:
        raise ValueError(f"acceleration: expected > 1 for a Poisson-disc mask, got {acceleration}")
    state = np.random.get_state()  # sigpy.mri.poisson reseeds NumPy's global RNG
    try:
        m = sigpy.mri.poisson(tuple(shape), acceleration, calib=(calib, calib), seed=seed, crop_corner=crop_corner, dtype=np.float32)
    finally:
        np.random.set_state(state)
    return (np.abs(m) > 0).astype(np.float32)


def gaussian2d_mask(shape: tuple[int, int], acceleration: float, calib: int, seed: int, sigma_fraction: float = 0.3) -> np.ndarray:
    """2-D Gaussian variable-density random mask with a fully sampled calibration square.

    Written here because SigPy has no variable-density random 2-D mask besides Poisson-disc.
    Points are drawn without replacement with probability ∝ ``exp(-r² / (2 σ²))``,
    ``σ = sigma_fraction`` of the half-width, until ``H·W / acceleration`` samples are taken.

    Returns:
        ``(H, W)`` float32 0/1 mask.
    """
    h, w = shape
    if acceleration <= 1:
        raise ValueError(f"acceleration: expected > 1, got {acceleration}")
    if not 0 < calib <= min(h, w):
        raise ValueError(f"calib: expected 1..{min(h, w)}, got {calib}")
    rng = np.random.default_rng(seed)
    ky = (np.arange(h) - h // 2) / (h / 2)
    kx = (np.arange(w) - w // 2) / (w / 2)
    r2 = ky[:, None] ** 2 + kx[None, :] ** 2
    mask = np.zeros((h, w), dtype=np.float32)
    cy, cx = h // 2 - calib // 2, w // 2 - calib // 2
    mask[cy : cy + calib, cx : cx + calib] = 1.0
    target = int(round(h * w / acceleration))
    remaining = target - int(mask.sum())
    if remaining > 0:
        p = np.exp(-r2 / (2 * sigma_fraction**2)).ravel()
        p[mask.ravel() > 0] = 0.0
        p /= p.sum()
        picks = rng.choice(h * w, size=min(remaining, int((p > 0).sum())), replace=False, p=p)
        mask.ravel()[picks] = 1.0
    return mask
