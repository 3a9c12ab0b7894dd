"""Reconstruction volumes in and out: NIfTI and HDF5, written atomically.

In memory a volume is ``(slices, rows, cols)``. In NIfTI it is stored as ``(cols, rows, slices)``
(the DICOM→NIfTI convention: voxel axis i runs along a row, j down the columns, k across slices),
and the affine maps ``(i, j, k)`` to RAS millimetres. Raw k-space files carry no patient
orientation: :func:`nifti_affine` then gives spacing on the diagonal with the origin at the volume
centre. CT volumes carry their DICOM-derived affine (see :mod:`medrecon.datasets.ct_volume`). In HDF5 it is the dataset ``reconstruction`` of shape
``(slices, rows, cols)`` float32 (the fastMRI submission layout), with optional ``std`` and
attributes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from ..errors import InputFileError


def nifti_affine(shape_src: tuple[int, int, int], voxel_size_mm: tuple[float, float, float]) -> np.ndarray:
    """4×4 affine for a ``(slices, rows, cols)`` volume with spacing ``(row, col, slice)`` mm and no
    known orientation: voxel ``(i=col, j=row, k=slice)`` → mm, origin at the volume centre."""
    s, r, c = shape_src
    aff = np.diag([float(voxel_size_mm[1]), float(voxel_size_mm[0]), float(voxel_size_mm[2]), 1.0])
    aff[:3, 3] = -aff[:3, :3] @ ((np.asarray([c, r, s], dtype=float) - 1) / 2)
    return aff


def write_nifti(
    volume: np.ndarray,
    path: str | Path,
    voxel_size_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
    affine: np.ndarray | None = None,
    dtype=np.float32,
    description: str | None = None,
) -> Path:
    """Write a ``(slices, rows, cols)`` real volume as NIfTI-1 (``.nii`` / ``.nii.gz``).

    Args:
        volume: real array ``(slices, rows, cols)``.
        path: output name.
        voxel_size_mm: ``(row, col, slice)`` spacing, used when ``affine`` is ``None``.
        affine: 4×4 voxel ``(col, row, slice)`` → RAS mm matrix (e.g. from a DICOM series).
        dtype: stored data type (float32 by default).
        description: the header's ``descrip`` (ASCII, at most 80 characters), e.g. a PET unit.

    Returns:
        The written path. Nothing is left behind when writing fails.
    """
    import nibabel as nib

    vol = np.asarray(volume)
    if np.iscomplexobj(vol):
        raise TypeError("volume: expected a real (magnitude) volume for NIfTI, got complex; pass np.abs(volume)")
    if vol.ndim != 3:
        raise ValueError(f"volume: expected (slices, rows, cols), got shape {vol.shape}")
    data = np.ascontiguousarray(np.transpose(vol, (2, 1, 0)), dtype=dtype)
    aff = nifti_affine(vol.shape, voxel_size_mm) if affine is None else np.asarray(affine, dtype=np.float64)
    img = nib.Nifti1Image(data, aff)
    img.header.set_xyzt_units("mm")
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    if description is not None:
        img.header["descrip"] = description.encode("ascii")
    with atomic_output(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def write_recon_h5(volume: np.ndarray, path: str | Path, std: np.ndarray | None = None, attrs: dict | None = None) -> Path:
    """Write ``reconstruction`` ``(slices, rows, cols)`` float32 (and ``std`` if given) to HDF5."""
    import h5py

    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"volume: expected (slices, rows, cols), got shape {vol.shape}")
    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("reconstruction", data=vol.astype(np.float32))
            if std is not None:
                f.create_dataset("std", data=np.asarray(std, dtype=np.float32))
            for k, v in (attrs or {}).items():
                f.attrs[k] = v
    return Path(path)


def write_volume(
    volume: np.ndarray, path: str | Path, voxel_size_mm=(1.0, 1.0, 1.0), attrs: dict | None = None, affine: np.ndarray | None = None
) -> Path:
    """Write by suffix: ``.nii`` / ``.nii.gz`` → NIfTI, ``.h5`` → HDF5."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return write_nifti(volume, p, voxel_size_mm, affine=affine)
    if name.endswith((".h5", ".hdf5")):
        return write_recon_h5(volume, p, attrs=attrs)
    raise InputFileError(p, "output file type", "a .nii, .nii.gz or .h5 name", f"suffix {''.join(p.suffixes) or 'none'!r}")


def read_volume(path: str | Path) -> np.ndarray:
    """Read a magnitude volume ``(slices, rows, cols)`` float32 for evaluation.

    Accepts NIfTI (as written by :func:`write_nifti`), HDF5 with ``reconstruction``,
    ``reconstruction_rss`` or ``reconstruction_esc``, and fastMRI / SKM-TEA / ``.npz`` raw files
    without such a dataset, in which case their reference target (or the RSS of the fully sampled
    k-space, centre-cropped to the recon size) is returned.
    """
    from .file_access import check_regular_file

    p = check_regular_file(path, "an existing file")
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        from .file_access import load_nifti_volume

        return load_nifti_volume(p)[0]
    if name.endswith((".h5", ".hdf5")):
        from .file_access import open_h5, read_dataset

        with open_h5(p) as f:
            for key in ("reconstruction", "reconstruction_rss", "reconstruction_esc"):
                if key in f:
                    return np.abs(read_dataset(p, f[key], key)).astype(np.float32)
    if name.endswith((".h5", ".hdf5", ".npz")):
        return reference_from_kspace(p)
    raise InputFileError(p, "file type", "NIfTI, HDF5 or .npz", f"suffix {''.join(p.suffixes) or 'none'!r}")


def reference_from_kspace(path: str | Path) -> np.ndarray:
    """Reference magnitude volume of a raw file: its stored target, else RSS of the k-space.

    The RSS is centre-cropped to the file's recon size when it has one (fastMRI convention).
    """
    import torch

    from ..physics.crop import center_crop
    from ..physics.fft import ifftc
    from .open_kspace import open_kspace

    src = open_kspace(path)
    out = []
    for i in range(src.num_slices):
        t = src.target(i)
        if t is None:
            coil_images = ifftc(torch.from_numpy(src.kspace(i)))
            t = torch.sqrt(torch.sum(torch.abs(coil_images) ** 2, dim=0)).numpy()
            if src.geometry.recon_size is not None:
                t = center_crop(t, src.geometry.recon_size)
        out.append(t.astype(np.float32))
    return np.stack(out)
