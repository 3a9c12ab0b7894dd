"""Training images for diffusion priors from the formats users bring.

Returns ``(N, H, W)`` arrays, complex64 for complex sources, float32 for magnitude sources (a
smooth synthetic phase can be added to magnitude data to train complex MRI priors). Slices are
taken along the first axis of ``(slices, rows, cols)`` volumes.

- ``.npz`` with ``images`` ``(N, H, W)`` (e.g. SIAT complex brain images), read without pickle;
- NIfTI volumes (magnitude, any orientation; axial slices along the file's third axis);
- fastMRI ``.h5`` (``reconstruction_rss`` / ``reconstruction_esc`` magnitude targets);
- SKM-TEA ``.h5`` (complex ``target``, first echo, first map).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputFileError


def smooth_phase(shape: tuple[int, int], rng: np.random.Generator, max_rad: float = np.pi) -> np.ndarray:
    """A random smooth (low-order polynomial) phase map ``(H, W)`` in radians."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    yy, xx = yy / h - 0.5, xx / w - 0.5
    c = rng.uniform(-1, 1, 6)
    ph = c[0] + c[1] * xx + c[2] * yy + c[3] * xx * yy + c[4] * xx**2 + c[5] * yy**2
    return (max_rad * ph / max(np.abs(ph).max(), 1e-6)).astype(np.float32)


def load_training_images(
    paths: list[str | Path], synthetic_phase: bool = False, min_fraction: float = 0.05, seed: int = 0, pad_to_common: bool = False
) -> np.ndarray:
    """Load and stack training slices from ``paths``.

    Args:
        paths: files (all must give the same in-plane size).
        synthetic_phase: give magnitude images a smooth random phase (complex output).
        min_fraction: drop slices whose mean magnitude is below this fraction of the source's
            brightest slice mean (empty slices at the ends of volumes).
        seed: RNG seed of the synthetic phase.
        pad_to_common: files of different in-plane sizes are zero-padded (centred) to the largest
            rows and columns among them, so volumes of several sizes train one patch prior;
            without it, differing sizes are an error.

    Raises:
        InputFileError: unreadable files, missing keys, mismatched sizes.
    """
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    for p in map(Path, paths):
        arr = _read(p)
        means = np.abs(arr).reshape(arr.shape[0], -1).mean(axis=1)
        arr = arr[means >= min_fraction * means.max()] if means.max() > 0 else arr[:0]
        if out and arr.shape[1:] != out[0].shape[1:] and not pad_to_common:
            raise InputFileError(p, "image size", f"{out[0].shape[1:]} like the other training files", f"{arr.shape[1:]}")
        out.append(arr)
    if not out or sum(len(a) for a in out) == 0:
        _no_usable_slices(paths, min_fraction)
    if pad_to_common:
        h, w = max(a.shape[1] for a in out), max(a.shape[2] for a in out)
        out = [_pad_centred(a, h, w) for a in out]
    images = np.concatenate(out)
    if synthetic_phase and not np.iscomplexobj(images):
        images = np.stack([im * np.exp(1j * smooth_phase(im.shape, rng)) for im in images]).astype(np.complex64)
    return images.astype(np.complex64 if np.iscomplexobj(images) else np.float32)


def load_training_pairs(
    paths: list[str | Path], cond_paths: list[str | Path], min_fraction: float = 0.05, pad_to_common: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Training images and their condition images, file by file and slice by slice.

    Each ``cond_paths[i]`` holds the condition of ``paths[i]``'s slices, with the same number of
    slices and in-plane size (e.g. the MR slices registered to a CT volume). Near-empty slices are
    dropped by the image's brightness, from both.

    Returns:
        ``images (N, H, W)`` and ``conds (N, 1, H, W)`` float32 (complex images stay complex64).

    Raises:
        InputFileError: unreadable files, a pair whose shapes differ, sizes that differ between
            files without ``pad_to_common``.
    """
    if len(paths) != len(cond_paths):
        raise ValueError(f"cond_paths: expected one per image file ({len(paths)}), got {len(cond_paths)}")
    imgs, conds = [], []
    for p, c in zip(map(Path, paths), map(Path, cond_paths)):
        arr, cond = _read(p), _read(c)
        if cond.shape != arr.shape:
            raise InputFileError(c, "shape", f"{arr.shape} like its image file {p.name}", f"{cond.shape}")
        if np.iscomplexobj(cond):
            raise InputFileError(c, "values", "real condition images", "complex values")
        means = np.abs(arr).reshape(arr.shape[0], -1).mean(axis=1)
        keep = means >= min_fraction * means.max() if means.max() > 0 else np.zeros(len(arr), bool)
        if imgs and arr.shape[1:] != imgs[0].shape[1:] and not pad_to_common:
            raise InputFileError(p, "image size", f"{imgs[0].shape[1:]} like the other training files", f"{arr.shape[1:]}")
        imgs.append(arr[keep])
        conds.append(cond[keep])
    if sum(len(a) for a in imgs) == 0:
        _no_usable_slices(paths, min_fraction)
    if pad_to_common:
        h, w = max(a.shape[1] for a in imgs), max(a.shape[2] for a in imgs)
        imgs = [_pad_centred(a, h, w) for a in imgs]
        conds = [_pad_centred(a, h, w) for a in conds]
    images = np.concatenate(imgs)
    return images.astype(np.complex64 if np.iscomplexobj(images) else np.float32), np.concatenate(conds)[:, None].astype(np.float32)


def load_training_volumes(paths: list[str | Path], synthetic_phase: bool = False, seed: int = 0) -> np.ndarray:
    """Load whole volumes for a 3-D (patch) prior: one volume ``(D, H, W)`` per file.

    Volumes of different sizes are zero-padded, centred, to the largest depth, rows and columns
    among them (training cuts random 3-D patches). A synthetic phase is one smooth in-plane map per
    volume, the same on every slice.

    Args:
        paths: files as for :func:`load_training_images` (an ``.npz`` ``images`` stack is one volume).
        synthetic_phase: give magnitude volumes a smooth random phase (complex output).
        seed: RNG seed of the synthetic phase.

    Returns:
        ``(N, D, H, W)`` complex64 or float32.

    Raises:
        InputFileError: unreadable files, missing keys.
    """
    if not paths:
        raise ValueError("paths: expected at least one training volume, got none")
    rng = np.random.default_rng(seed)
    vols = [_read(Path(p)) for p in paths]
    d, h, w = (max(v.shape[i] for v in vols) for i in range(3))
    out = []
    for v in vols:
        dd = d - v.shape[0]
        v = np.pad(_pad_centred(v, h, w), ((dd // 2, dd - dd // 2), (0, 0), (0, 0)))
        if synthetic_phase and not np.iscomplexobj(v):
            v = v * np.exp(1j * smooth_phase((h, w), rng))[None]
        out.append(v)
    volumes = np.stack(out)
    return volumes.astype(np.complex64 if np.iscomplexobj(volumes) else np.float32)


def _no_usable_slices(paths: list, min_fraction: float) -> None:
    """Raise the error of training files without one usable slice (all zero, or all below ``min_fraction``)."""
    if not paths:
        raise ValueError("paths: expected at least one training file, got none")
    where = str(paths[0]) if len(paths) == 1 else ", ".join(map(str, paths))
    raise InputFileError(where, "images", f"slices with signal (mean above {min_fraction:g} of the brightest slice's)", "none")


def _pad_centred(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Zero-pad ``(N, h0, w0)`` to ``(N, h, w)``, the original centred."""
    dh, dw = h - a.shape[1], w - a.shape[2]
    return np.pad(a, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))


def _read(p: Path) -> np.ndarray:
    """The images of one training file, refused when not finite (NaN / Inf)."""
    arr = _read_file(p)
    if not np.issubdtype(arr.dtype, np.number):
        raise InputFileError(p, "images", "numbers", f"dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InputFileError(p, "images", "finite values", "NaN or Inf")
    return arr


def _read_file(p: Path) -> np.ndarray:
    from .file_access import check_npz, check_regular_file, read_dataset

    name = check_regular_file(p, "an existing training file").name.lower()
    if name.endswith(".npz"):
        check_npz(p, "a NumPy .npz archive without pickled objects", ("images",))
        try:
            with np.load(p, allow_pickle=False) as z:
                if "images" not in z.files:
                    raise InputFileError(p, "images", "an array 'images' (N, H, W)", f"keys {z.files}")
                arr = z["images"]
        except (OSError, ValueError) as err:
            raise InputFileError(p, "file", "a NumPy .npz archive without pickled objects", f"unreadable ({err})") from None
        if arr.ndim != 3:
            raise InputFileError(p, "images", "(N, H, W)", f"shape {arr.shape}")
        return arr
    if name.endswith((".nii", ".nii.gz")):
        from .file_access import load_nifti_volume

        vol, _ = load_nifti_volume(p)  # (k, j, i)
        return np.transpose(vol, (0, 2, 1))  # slices along k, image (i, j) as (rows, cols)
    if name.endswith((".h5", ".hdf5")):
        from ..memory import check_allocation
        from .file_access import open_h5

        with open_h5(p) as f:
            if "target" in f and f["target"].ndim == 5:  # SKM-TEA
                ds = f["target"]
                check_allocation((ds.shape[:3], ds.dtype), p, "target", working=(np.complex64,))
                return np.asarray(ds[:, :, :, 0, 0], dtype=np.complex64)
            for key in ("reconstruction_rss", "reconstruction_esc"):
                if key in f:
                    return read_dataset(p, f[key], key, np.float32)
        raise InputFileError(p, "dataset", "fastMRI 'reconstruction_rss'/'reconstruction_esc' or SKM-TEA 'target'", "none of them")
    raise InputFileError(p, "file type", ".npz, NIfTI or .h5", f"suffix {''.join(p.suffixes) or 'none'!r}")
