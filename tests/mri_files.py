"""Builders of small files in the exact fastMRI / SKM-TEA layouts (for tests only)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from medrecon.datasets.fastmri import make_ismrmrd_header
from medrecon.physics.fft import fftc, ifftc
from medrecon.physics.mri.coils import rss


def multicoil_volume(slices=3, coils=4, h=64, w=48, seed=0) -> np.ndarray:
    """Fully sampled k-space (S, C, H, W) of a smooth object seen by smooth coils."""
    import sigpy as sp
    import sigpy.mri

    rng = np.random.default_rng(seed)
    n = max(h, w)
    base = sp.shepp_logan((n, n))[(n - h) // 2 : (n - h) // 2 + h, (n - w) // 2 : (n - w) // 2 + w]
    maps = sigpy.mri.birdcage_maps((coils, h, w)).astype(np.complex64)
    out = []
    for s in range(slices):
        img = base * (1 + 0.1 * s) * np.exp(1j * 0.3 * s)
        k = fftc(torch.from_numpy(maps * img.astype(np.complex64))).numpy()
        k += 1e-3 * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
        out.append(k.astype(np.complex64))
    return np.stack(out)


def write_fastmri(path: Path, kspace: np.ndarray, recon_size=(32, 32), mask=None, singlecoil=False, with_target=True) -> Path:
    """A fastMRI-layout h5: kspace, optional mask, reconstruction_rss/esc, ismrmrd_header, attrs."""
    s, c, h, w = kspace.shape
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace[:, 0] if singlecoil else kspace)
        if mask is not None:
            f.create_dataset("mask", data=mask)
        if with_target:
            imgs = rss(ifftc(torch.from_numpy(kspace)), dim=1).numpy()
            y0, x0 = (h - recon_size[0]) // 2, (w - recon_size[1]) // 2
            key = "reconstruction_esc" if singlecoil else "reconstruction_rss"
            f.create_dataset(key, data=imgs[:, y0 : y0 + recon_size[0], x0 : x0 + recon_size[1]].astype(np.float32))
        f.create_dataset(
            "ismrmrd_header",
            data=np.bytes_(make_ismrmrd_header((h, w, 1), (*recon_size, 1), (recon_size[0] * 0.5, recon_size[1] * 0.5, 3.0), w // 2, w)),
        )
        f.attrs["acquisition"] = "CORPD_FBK"
        f.attrs["max"] = 1.0
        f.attrs["norm"] = 1.0
        f.attrs["patient_id"] = "abc"
    return path


def write_skmtea(path: Path, kspace: np.ndarray, echoes=2, with_masks=True) -> Path:
    """An SKM-TEA-layout h5 from (S, C, H, W) k-space: kspace (x, ky, kz, echo, coil), maps, target, masks."""
    from medrecon.physics.mri.coils import espirit_maps

    s, c, h, w = kspace.shape
    k5 = np.stack([kspace * (1.0 - 0.3 * e) for e in range(echoes)], axis=-1)  # (S, C, H, W, E)
    k5 = np.transpose(k5, (0, 2, 3, 4, 1)).astype(np.complex64)  # (x, ky, kz, echo, coil)
    maps = np.stack([espirit_maps(torch.from_numpy(kspace[i]), (16, 16)).numpy() for i in range(s)])  # (S, C, H, W)
    maps5 = np.transpose(maps, (0, 2, 3, 1))[..., None].astype(np.complex64)  # (x, ky, kz, coil, 1)
    coil_imgs = ifftc(torch.from_numpy(kspace)).numpy()
    comb = np.sum(np.conj(maps) * coil_imgs, axis=1)  # (S, H, W)
    target = np.stack([comb * (1.0 - 0.3 * e) for e in range(echoes)], axis=-1)[..., None].astype(np.complex64)
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=k5)
        f.create_dataset("maps", data=maps5)
        f.create_dataset("target", data=target)
        if with_masks:
            from medrecon.physics.mri.masks import poisson_mask

            f.create_dataset("masks/poisson_4x", data=poisson_mask((h, w), 4.0, 12, seed=0))
    return path
