"""The embedded default for ``medrecon demo``: real MR anatomy a dependency ships, made multi-coil.

Source: the abdominal MR slice ``MR-SIEMENS-DICOM-WithOverlays.dcm`` (484², 0.72 mm) from the
MIT-licensed ``pydicom-data`` package, read through ``pydicom.data.get_testdata_file`` (no network
when ``pydicom-data`` is installed, as it is with medrecon). The magnitude image is resampled to
205² inside a 256² field of view, given a smooth synthetic phase, multiplied by simulated birdcage coil sensitivities
(``sigpy.mri.birdcage_maps``) and Fourier transformed; complex Gaussian noise at a fixed seed is
added to the k-space. Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from ..physics.fft import fftc

DEMO_DICOM = "MR-SIEMENS-DICOM-WithOverlays.dcm"


def demo_brain_file() -> Path:
    """``demo_brain.npz`` (``magnitude`` (160, 232) uint16, ``pixel_mm`` (2,)): axial slice 85 of the
    MIT-licensed ``seg3D/MR`` head (licence and provenance: ``DEMO_NOTICE.md`` beside it)."""
    return Path(str(files("medrecon.datasets"))) / "demo_brain.npz"


@dataclass
class DemoSlice:
    """A simulated fully sampled multi-coil acquisition of a real MR image.

    Attributes:
        kspace: ``(C, N, N)`` complex64 fully sampled, noisy k-space.
        image: ``(N, N)`` complex64 ground-truth image (before coils and noise).
        maps: ``(C, N, N)`` complex64 true coil sensitivities.
        pixel_mm: in-plane pixel size after resampling.
        source: where the anatomy came from.
    """

    kspace: torch.Tensor
    image: torch.Tensor
    maps: torch.Tensor
    pixel_mm: float
    source: str


BRAIN_SOURCE = "seg3D_MR axial slice 85 (Seg3DData, MIT; one of the brain prior's training slices)"


def demo_slice(size: int = 256, coils: int = 8, noise_rel: float = 1e-4, seed: int = 0, anatomy: str = "abdomen") -> DemoSlice:
    """Build the demo acquisition.

    Args:
        size: output matrix ``N``.
        coils: number of simulated receive coils.
        noise_rel: k-space noise standard deviation relative to the k-space maximum magnitude.
        seed: seed of the noise.
        anatomy: ``abdomen`` (the pydicom-data slice above) or ``brain`` (an axial T1 slice with
            skull and scalp shipped in this package (demo_brain.npz), 160 × 232 at 1.0 × 0.9 mm, MIT; the
            prior was trained on its volume, so it shows the method, it measures nothing).
    """
    from skimage.transform import resize

    if anatomy == "brain":
        return _brain_slice(size, coils, noise_rel, seed)
    if anatomy != "abdomen":
        raise ValueError(f"anatomy: expected 'abdomen' or 'brain', got {anatomy!r}")
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file(DEMO_DICOM)
    if path is None:
        raise FileNotFoundError(f"{DEMO_DICOM}: expected in the pydicom-data package; install it with `pip install pydicom-data`")
    ds = pydicom.dcmread(path)
    mag = ds.pixel_array.astype(np.float64)
    mag = mag * float(getattr(ds, "RescaleSlope", 1.0)) + float(getattr(ds, "RescaleIntercept", 0.0))
    n0 = min(mag.shape)
    mag = mag[:n0, :n0]
    # the body fills the DICOM's field of view; a scanner's FOV is larger than the object, so the
    # anatomy takes the central 80 % of the simulated FOV (no wrap-around of the arms)
    inner = int(round(0.8 * size))
    mag = resize(mag, (inner, inner), anti_aliasing=True, order=3, preserve_range=True)
    mag = np.pad(np.clip(mag, 0, None), (size - inner) // 2 + np.array([[0, (size - inner) % 2]] * 2))
    pixel = float(ds.PixelSpacing[0]) * n0 / inner
    return _acquire(mag, coils, noise_rel, seed, pixel, f"pydicom-data:{DEMO_DICOM}")


def _brain_slice(size: int, coils: int, noise_rel: float, seed: int) -> DemoSlice:
    from skimage.transform import resize

    path = demo_brain_file()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the demo brain slice ships inside medrecon.datasets; reinstall medrecon")
    with np.load(path, allow_pickle=False) as z:
        mag, pix = z["magnitude"].astype(np.float64), z["pixel_mm"].astype(np.float64)
    extent = np.array(mag.shape) * pix  # mm; the longer side takes 80 % of the field of view
    inner = np.round(0.8 * size * extent / extent.max()).astype(int)
    mag = np.clip(resize(mag, tuple(inner), anti_aliasing=True, order=3, preserve_range=True), 0, None)
    pad = [(int(size - n) // 2, int(size - n) - int(size - n) // 2) for n in inner]
    return _acquire(np.pad(mag, pad), coils, noise_rel, seed, float(extent.max() / inner.max()), BRAIN_SOURCE)


def _acquire(mag: np.ndarray, coils: int, noise_rel: float, seed: int, pixel: float, source: str) -> DemoSlice:
    """Smooth phase, birdcage coils, centred FFT and complex Gaussian noise for a square magnitude image."""
    import sigpy.mri

    size = mag.shape[0]
    mag = mag / mag.max()
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    phase = np.pi * (0.4 * xx - 0.25 * yy + 0.5 * (xx**2 + yy**2))  # smooth, B0-like
    img = (mag * np.exp(1j * phase)).astype(np.complex64)
    maps = sigpy.mri.birdcage_maps((coils, size, size), r=1.3).astype(np.complex64)
    x = torch.from_numpy(img)
    s = torch.from_numpy(maps)
    k = fftc(s * x)
    g = torch.Generator().manual_seed(seed)
    sigma = noise_rel * float(k.abs().max())
    noise = torch.complex(torch.randn(k.shape, generator=g), torch.randn(k.shape, generator=g)) * (sigma / np.sqrt(2))
    return DemoSlice((k + noise).to(torch.complex64), x, s, pixel, source)
