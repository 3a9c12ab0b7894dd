"""Evaluate a folder of reconstructions against a folder of targets, volume by volume, as fastMRI's ``evaluate.py`` does.

For every target file ``NAME`` the reconstruction is ``RECON/NAME`` (fastMRI submission files:
``.h5`` with ``reconstruction``). fastMRI's conventions, kept exactly:

- the target is the file's ``reconstruction_rss`` (multi-coil) or ``reconstruction_esc``
  (single-coil); a raw file with neither (``.npz``, SKM-TEA) gives the RSS of its fully sampled
  k-space (:func:`medrecon.datasets.image_io.reference_from_kspace`);
- target and reconstruction are centre-cropped to ``(W, W)``, ``W`` the target's width (when the
  target is less tall than wide, which fastMRI refuses, to its own size; the JSON says so);
- per volume: MSE, NMSE, PSNR with ``maxval = target.max()`` and SSIM averaged over slices with
  the volume's ``target.max()`` (:mod:`medrecon.evaluation.metrics`);
- summaries: the mean over volumes and the sample standard deviation (``ddof = 1``, as
  ``runstats.Statistics.stddev``; fastMRI prints ``mean +/- 2 std``).

Volumes are also grouped by the ``acceleration`` their target or reconstruction file records.
A test checks the numbers against the ``fastmri`` package: they agree to 1.2e-7 relative, the
rounding of fastMRI's float32 sums (MSE and NMSE of float32 files); medrecon sums in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..physics.crop import center_crop
from .metrics import nmse, psnr, ssim

RAW_SUFFIXES = (".h5", ".hdf5", ".npz")
METRICS = ("MSE", "NMSE", "PSNR", "SSIM")
INFO = ("file", "slices", "crop", "acceleration", "acquisition")  # per-volume columns that are not metrics


def target_files(folder: Path, suffixes: Sequence[str] = RAW_SUFFIXES) -> list[Path]:
    """The target folder's files of the given types, by name (hidden names ignored)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(tuple(suffixes)))


def recon_for(target: Path, recon_folder: Path) -> Path:
    """``RECON/NAME``, or ``RECON/STEM.h5`` for an ``.hdf5`` / ``.npz`` target (what folder reconstruction writes)."""
    same = recon_folder / target.name
    low = target.name.lower()
    if same.exists() or low.endswith(".h5"):
        return same
    for suffix in (".hdf5", ".npz"):
        if low.endswith(suffix):
            return recon_folder / (target.name[: -len(suffix)] + ".h5")
    return same


def _attrs(path: Path) -> dict:
    """``acceleration`` / ``acquisition`` of an HDF5 file's attributes (empty for other files)."""
    if not path.name.lower().endswith((".h5", ".hdf5")):
        return {}
    from ..datasets.file_access import open_h5

    out = {}
    with open_h5(path) as f:
        for key in ("acceleration", "acquisition"):
            if key in f.attrs:
                value = f.attrs[key]
                out[key] = value.decode() if isinstance(value, bytes) else (value.item() if hasattr(value, "item") else value)
    return out


def fastmri_crop(target: np.ndarray, recon: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Crop both to ``(W, W)`` as fastMRI does; returns them and a note of the crop."""
    w = target.shape[-1]
    shape = (w, w) if target.shape[-2] >= w else tuple(target.shape[-2:])
    for what, arr, path in (("target", target, source), ("reconstruction", recon, source)):
        if arr.shape[-2] < shape[0] or arr.shape[-1] < shape[1]:
            raise InputFileError(path, f"{what} size", f"at least {shape} (fastMRI's crop)", f"{tuple(arr.shape[-2:])}")
    note = f"{shape[0]}x{shape[1]}" + ("" if shape == (w, w) else " (target less tall than wide: not fastMRI's square crop)")
    return center_crop(target, shape), center_crop(recon, shape), note


def read_image(path: Path, keys: Sequence[str]) -> np.ndarray:
    """The first of ``keys`` in an HDF5 file as stored (real values keep their sign, as fastMRI reads them;
    complex ones become magnitudes); other files through :func:`~medrecon.datasets.image_io.read_volume`."""
    from ..datasets.image_io import read_volume

    if path.name.lower().endswith((".h5", ".hdf5")):
        from ..datasets.file_access import open_h5, read_dataset

        with open_h5(path) as f:
            for key in keys:
                if key in f:
                    arr = np.asarray(read_dataset(path, f[key], key))
                    return np.abs(arr) if np.iscomplexobj(arr) else arr
    return read_volume(path)


def volume_row(target_path: Path, recon_path: Path) -> dict:
    """One volume's fastMRI metrics and what its files record."""
    target = read_image(target_path, ("reconstruction_rss", "reconstruction_esc")).astype(np.float64)
    recon = read_image(recon_path, ("reconstruction",)).astype(np.float64)
    if target.ndim != 3 or recon.ndim != 3:
        raise InputFileError(
            recon_path if recon.ndim != 3 else target_path,
            "volume",
            "(slices, rows, cols)",
            f"{recon.ndim if recon.ndim != 3 else target.ndim} dims",
        )
    if recon.shape[0] != target.shape[0]:
        raise InputFileError(recon_path, "slices", f"{target.shape[0]} like the target {target_path.name}", f"{recon.shape[0]}")
    if not np.all(np.isfinite(recon)):
        raise InputFileError(recon_path, "values", "finite values", "NaN or Inf")
    t, r, crop = fastmri_crop(target, recon, recon_path)
    info = {**_attrs(recon_path), **_attrs(target_path)}
    return {
        "file": target_path.name,
        "slices": int(t.shape[0]),
        "crop": crop,
        "acceleration": info.get("acceleration"),
        "acquisition": info.get("acquisition"),
        "MSE": float(np.mean((t - r) ** 2)),
        "NMSE": nmse(t, r),
        "PSNR": psnr(t, r),
        "SSIM": ssim(t, r),
    }


def summarise(rows: list[dict], metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float | None]]:
    """Mean and sample std (ddof 1; None for one volume) of each metric over the rows."""
    out = {}
    for m in metrics:
        values = np.array([row[m] for row in rows if row.get(m) is not None], dtype=np.float64)
        if values.size == 0:
            continue
        std = float(np.std(values, ddof=1)) if values.size > 1 else None
        out[m] = {"mean": float(values.mean()), "std": std}
    return out


def evaluate_folders(
    target_folder: Path,
    recon_folder: Path,
    skip_missing: bool = False,
    row: Callable[[Path, Path], dict] = volume_row,
    suffixes: Sequence[str] = RAW_SUFFIXES,
    progress: Callable[[], None] | None = None,
) -> dict:
    """Per-volume metrics of every target with a reconstruction, their summary, and groups by acceleration.

    Args:
        target_folder: targets (raw fastMRI / SKM-TEA / ``.npz`` files, or the task's volumes).
        recon_folder: reconstructions named like the targets (:func:`recon_for`).
        skip_missing: evaluate only targets that have a reconstruction (else a missing one is refused).
        row: one volume's metrics (default fastMRI's, :func:`volume_row`).
        suffixes: the target files' types.
        progress: called after each volume.

    Raises:
        InputFileError: no targets, a missing reconstruction (unless ``skip_missing``), or a volume
            that cannot be evaluated.
    """
    targets = target_files(target_folder, suffixes)
    if not targets:
        raise InputFileError(target_folder, "--target", f"a folder with {' / '.join(suffixes)} files", "none")
    pairs = [(t, recon_for(t, recon_folder)) for t in targets]
    missing = [r for _, r in pairs if not r.is_file()]
    if missing and not skip_missing:
        raise InputFileError(
            recon_folder,
            "--recon",
            f"a reconstruction for each of the {len(pairs)} targets (or --skip-missing)",
            f"{len(missing)} missing, e.g. {missing[0].name}",
        )
    rows = []
    for t, r in pairs:
        if r.is_file():
            rows.append(row(t, r))
        if progress is not None:
            progress()
    if not rows:
        raise InputFileError(recon_folder, "--recon", "at least one reconstruction named like a target", "none")
    metrics = [m for m in rows[0] if m not in INFO and isinstance(rows[0][m], float)]
    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("acceleration") is not None:
            groups.setdefault(f"{float(r['acceleration']):g}", []).append(r)
    return {
        "volumes": len(rows),
        "missing": [m.name for m in missing],
        "metrics": summarise(rows, metrics),
        "by_acceleration": {
            k: {"volumes": len(v), "metrics": summarise(v, metrics)} for k, v in sorted(groups.items(), key=lambda kv: float(kv[0]))
        },
        "per_volume": rows,
    }


def fastmri_line(summary: dict[str, dict[str, float | None]]) -> str:
    """fastMRI's printout: ``NAME = mean +/- 2 std`` for each metric, names sorted."""
    parts = []
    for name in sorted(summary):
        s = summary[name]
        two_sd = 2 * s["std"] if s["std"] is not None else math.nan
        parts.append(f"{name} = {s['mean']:.4g} +/- {two_sd:.4g}")
    return " ".join(parts)


def write_rows_csv(rows: list[dict], path: str | Path) -> Path:
    """Write per-volume rows (the union of their keys as columns) as CSV, atomically."""
    import csv
    import io

    from ..atomic import atomic_output

    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    with atomic_output(path) as tmp:
        tmp.write_text(buf.getvalue())
    return Path(path)
