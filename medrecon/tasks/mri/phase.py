"""Smooth (low-resolution) phase of complex MR images, to hand a prior images in its phase convention.

Why by hand: SigPy and MONAI have no phase estimator; this is a Gaussian low-pass of the complex
image (a product in k-space, the same for every slice), whose angle is the image's smooth phase —
the estimate homodyne and partial-Fourier methods use.

The SENSE model is unchanged when the image is multiplied by ``exp(-iφ)`` and every coil map by
``exp(iφ)``: a reconstruction can therefore run on the demodulated image ``x·exp(-iφ)`` (nearly
real and positive) and rotate back at the end. A prior trained on nearly real images (for
example the SIAT images) sees its own convention whatever phase the coil maps imposed (ESPIRiT
maps carry the phase of one coil).
"""

from __future__ import annotations

import math

import torch


def estimate_smooth_phase(x: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Phase of ``x`` low-passed by a Gaussian of ``sigma_px`` pixels.

    Args:
        x: ``(..., H, W)`` complex image(s).
        sigma_px: standard deviation of the Gaussian blur in pixels (> 0); the blur wraps around
            the field of view (FFT), harmless for images whose edges are background.

    Returns:
        ``(..., H, W)`` real phase in radians, same real dtype as ``x``.
    """
    if not x.is_complex():
        raise ValueError(f"x: expected a complex image, got dtype {x.dtype}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px: expected > 0, got {sigma_px}")
    h, w = x.shape[-2:]
    # the Fourier transform of a Gaussian of σ pixels is a Gaussian of 1 / (2πσ) cycles per pixel
    fy = torch.fft.fftfreq(h, device=x.device, dtype=x.real.dtype)
    fx = torch.fft.fftfreq(w, device=x.device, dtype=x.real.dtype)
    c = 2 * (math.pi * sigma_px) ** 2
    window = torch.exp(-c * (fy[:, None] ** 2 + fx[None, :] ** 2))
    low = torch.fft.ifft2(torch.fft.fft2(x) * window)
    return torch.angle(low)
