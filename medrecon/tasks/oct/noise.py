"""The speckle noise level of an OCT B-scan, estimated from the B-scan itself.

Rule: σ = median(|HH|) / Φ⁻¹(0.75), where HH are the finest diagonal (high-high) Daubechies-2
wavelet coefficients of the B-scan *as stored* (Donoho & Johnstone 1994). The Duke B-scans are
log-compressed display images, where speckle is close to additive and white: on the 12 shared
cases the residual against the registered average is uncorrelated between neighbouring pixels
(correlation < 0.08) and its std varies little with intensity (28–39 grey levels). The whole
B-scan is used: restricting the estimate to unsaturated or tissue pixels was measured farther
from the noise std in the vitreous (whole B-scan: 26.3–29.1 grey levels, against a residual std of
25.5–28.6 measured there; leaving out coefficients near pixels clipped at 0 or 255: 23.3–26.3).

Hand-written (a dozen lines around PyWavelets' ``dwt2``) so it returns one σ per B-scan of a stack
and stays one explicit formula; the test-suite pins it to scikit-image's ``estimate_sigma`` on
Gaussian noise.
"""

from __future__ import annotations

import numpy as np
import torch

from ...diffusion.schedule import VPSchedule

MAD_TO_SIGMA = 0.6744897501960817  # median(|N(0, 1)|) = Φ⁻¹(0.75): the MAD of a Gaussian in units of its σ


def estimate_noise_sigma(bscan: np.ndarray) -> float:
    """σ of the noise of one B-scan ``(H, W)`` (any real dtype), in its stored units (see the module docstring)."""
    import pywt

    x = np.asarray(bscan, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"bscan: expected (H, W), got shape {x.shape}")
    _, (_, _, hh) = pywt.dwt2(x, "db2")
    return float(np.median(np.abs(hh)) / MAD_TO_SIGMA)


def estimate_noise_sigmas(bscans: np.ndarray) -> np.ndarray:
    """σ per B-scan of a stack ``(N, H, W)``: ``(N,)`` float64."""
    stack = np.asarray(bscans)
    if stack.ndim != 3:
        raise ValueError(f"bscans: expected (N, H, W), got shape {stack.shape}")
    return np.array([estimate_noise_sigma(b) for b in stack])


TRAINED_LEVELS = (0.5, 8.0)  # network noise levels a DDPM OCT prior trains on, in units of its B-scans' σ̂


def training_timestep_range(sigmas: np.ndarray, schedule: VPSchedule) -> tuple[int, int]:
    """The timesteps ``(lo, hi)`` a DDPM OCT prior trains on (``TrainConfig.timestep_range``).

    Denoising calls the network at ``√(τ² − σ̂²)`` for chain levels ``τ`` of a few σ̂ (one step at
    6 σ̂ by default, chains down to ``end_level`` 1.2 σ̂, i.e. 0.66 σ̂ at the network;
    :mod:`medrecon.tasks.oct.diffusion`), never near the clean end or at pure noise, so training
    spends its steps on network levels from ``TRAINED_LEVELS[0]`` × the smallest to
    ``TRAINED_LEVELS[1]`` × the largest σ̂ of the training B-scans ``sigmas (N,)`` (prior's scale).
    Measured in docs/results/oct.md.
    """
    levels = torch.tensor([TRAINED_LEVELS[0] * float(np.min(sigmas)), TRAINED_LEVELS[1] * float(np.max(sigmas))], dtype=torch.float64)
    lo, hi = (round(float(t)) for t in schedule.timestep_of_sigma(levels))
    return lo, max(hi, lo + 1)
