"""``medrecon evaluate``: metrics of a reconstruction against a target (fastMRI conventions, HU for CT, OCT metrics)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ArgumentError, InputFileError
from ..tasks.options import FiniteFloat


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="NMSE / PSNR / SSIM of a reconstruction against a target (fastMRI conventions; HU for CT)")
    ev.add_argument(
        "--target",
        required=True,
        help="fully sampled raw file or reference volume (DICOM series / NIfTI in HU for CT), or a folder of them",
    )
    ev.add_argument(
        "--recon", required=True, help="reconstruction (.nii[.gz], .h5, DICOM series), or a folder of them named like the targets"
    )
    ev.add_argument("--slices", default=None, help="target slices the reconstruction covers")
    ev.add_argument("--json", default=None, help="also write the metrics as JSON")
    ev.add_argument("--csv", default=None, help="folders: also write one row per volume as CSV")
    ev.add_argument("--skip-missing", action="store_true", help="folders: evaluate the targets that have a reconstruction, list the rest")
    ev.add_argument(
        "--window",
        type=float,
        action=FiniteFloat,
        nargs=2,
        default=None,
        metavar=("LO", "HI"),
        help="CT: HU window for the metrics (default -1000 1000); implied for DICOM targets",
    )
    ev.add_argument(
        "--body", action="store_true", help="CT: metrics over the body only (the target's largest region above -500 HU, holes filled)"
    )
    ev.add_argument(
        "--metrics",
        default=None,
        choices=("oct", "hu"),
        help="oct: PSNR / SSIM against the registered average, CNR, ENL, MSR, EPI (implied for .tif / .tiff / .png files); "
        "hu: synthetic CT — MAE / ME in the body, MAE in bone, bone Dice, PSNR / SSIM over the CT range, per slice",
    )
    ev.add_argument("--mask", default=None, help="--metrics hu: the body mask (NIfTI, nonzero inside; default: the target's body)")
    ev.add_argument("--std", default=None, help="--metrics hu: the per-voxel std of the samples (how far it tracks the error)")
    ev.add_argument("--bscan-axis", type=int, default=None, choices=(0, 1, 2), help="OCT NIfTI volumes: the voxel axis of the B-scans")
    ev.add_argument("--quiet", action="store_true", help="folders: no progress bar")
    ev.set_defaults(func=run)


def _is_ct_path(p: str) -> bool:
    path = Path(p)
    return path.is_dir() or path.suffix.lower() == ".dcm"


def _is_oct_image(p: str) -> bool:
    return Path(p).name.lower().endswith((".tif", ".tiff", ".png"))


def run(args: argparse.Namespace) -> int:
    from ..atomic import check_not_an_input, check_output_path
    from ..runtime import parse_slices

    for option in ("json", "csv"):
        path = getattr(args, option)
        if path is not None:
            check_output_path(path)
            check_not_an_input(path, [("--target", args.target), ("--recon", args.recon)], option=f"--{option}")
    if _folder_kind(args.target) is not None:
        return _evaluate_folders(args)
    if args.csv is not None or args.skip_missing:
        raise ArgumentError("--csv / --skip-missing: used when --target and --recon are folders of volumes")
    if args.window is not None and not args.window[0] < args.window[1]:
        raise ArgumentError(f"--window: expected LO < HI, got {args.window[0]:g} {args.window[1]:g}")
    if args.metrics == "hu":
        return _evaluate_sct(args)
    if args.mask is not None or args.std is not None:
        raise ArgumentError("--mask / --std: used with --metrics hu only")
    if args.metrics == "oct" or any(_is_oct_image(p) for p in (args.target, args.recon)):
        return _evaluate_oct(args)
    if args.bscan_axis is not None:
        raise ArgumentError(f"--bscan-axis: used with --metrics oct only, got --bscan-axis {args.bscan_axis}")
    if args.window is not None or args.body or _is_ct_path(args.target) or _is_ct_path(args.recon):
        return _evaluate_ct(args)
    import numpy as np

    from ..datasets.image_io import read_volume
    from ..evaluation.metrics import volume_metrics

    target = read_volume(args.target)
    recon = read_volume(args.recon)
    slices = parse_slices(args.slices)
    if slices is not None:
        if max(slices) >= target.shape[0]:
            raise InputFileError(args.target, "slices", f"indices below {target.shape[0]}", f"{max(slices)} in --slices")
        target = target[slices]
    if recon.shape[0] != target.shape[0]:
        raise InputFileError(args.recon, "slices", f"{target.shape[0]} slices like the target (or pass --slices)", f"{recon.shape[0]}")
    if recon.shape[1] < target.shape[1] or recon.shape[2] < target.shape[2]:
        raise InputFileError(args.recon, "image size", f"at least {target.shape[1:]} (the target's)", f"{recon.shape[1:]}")
    if not np.all(np.isfinite(recon)):
        raise InputFileError(args.recon, "values", "finite values", "NaN or Inf")
    return _report(volume_metrics(target, recon), args)


def _folder_kind(path: str) -> str | None:
    """``raw`` for a folder of raw MRI files (fastMRI), ``nifti`` for a folder of NIfTI volumes, else None (one input)."""
    from ..evaluation.folders import RAW_SUFFIXES, target_files

    p = Path(path)
    if not p.is_dir():
        return None
    if target_files(p, RAW_SUFFIXES):
        return "raw"
    return "nifti" if target_files(p, (".nii", ".nii.gz")) else None


def _evaluate_folders(args: argparse.Namespace) -> int:
    """Volume-wise metrics over two folders: fastMRI's for raw MRI targets, HU for NIfTI CT volumes."""
    from tqdm import tqdm

    from ..evaluation.folders import RAW_SUFFIXES, evaluate_folders, fastmri_line, target_files, volume_row, write_rows_csv

    kind = _folder_kind(args.target)
    if not Path(args.recon).is_dir():
        raise InputFileError(args.recon, "--recon", "a folder of reconstructions (--target is a folder)", "not a folder")
    if args.slices is not None or args.std is not None or args.mask is not None or args.bscan_axis is not None:
        raise ArgumentError("--slices / --std / --mask / --bscan-axis: single-volume options; not used with folders")
    if kind == "raw" and (args.metrics is not None or args.window is not None or args.body):
        raise ArgumentError("--metrics / --window / --body: CT and OCT options; a folder of raw MRI files gets fastMRI's metrics")
    if kind == "nifti" and args.metrics != "hu" and args.window is None and not args.body:
        raise ArgumentError(
            "--metrics: a folder of NIfTI volumes is evaluated in HU: give --metrics hu (synthetic CT) or --window LO HI / --body (CT); "
            "MRI folders are evaluated from their raw .h5 targets"
        )
    suffixes = RAW_SUFFIXES if kind == "raw" else (".nii", ".nii.gz")
    row = volume_row if kind == "raw" else _hu_row(args)
    total = len(target_files(Path(args.target), suffixes))
    bar = None

    def progress() -> None:  # the bar starts with the first volume, after the folders were checked
        nonlocal bar
        bar = bar or tqdm(total=total, desc="evaluate", unit="volume", disable=args.quiet)
        bar.update(1)

    try:
        result = evaluate_folders(Path(args.target), Path(args.recon), args.skip_missing, row, suffixes, progress)
    finally:
        if bar is not None:
            bar.close()
    if result["missing"]:
        print(f"skipped {len(result['missing'])} targets without a reconstruction: {', '.join(result['missing'][:5])}", file=sys.stderr)
    summary = {k: v["mean"] for k, v in result["metrics"].items()}
    for k, v in result["metrics"].items():
        if v["std"] is not None:
            summary[f"{k} std"] = v["std"]
    print(f"{result['volumes']} volumes")
    if kind == "raw":
        print(f"fastMRI: {fastmri_line(result['metrics'])}")
        for accel, group in result["by_acceleration"].items():
            print(f"{accel}x ({group['volumes']} volumes): {fastmri_line(group['metrics'])}")
    if args.csv:
        write_rows_csv(result["per_volume"], args.csv)
    return _report(summary, args, result)


def _hu_row(args: argparse.Namespace):
    """One NIfTI CT volume's HU metrics (synthetic-CT metrics with --metrics hu)."""

    def row(target: Path, recon: Path) -> dict:
        from ..datasets.ct_volume import read_ct
        from ..evaluation.ct_metrics import DEFAULT_WINDOW, body_mask, hu_metrics
        from ..evaluation.sct_metrics import CT_RANGE, sct_metrics

        t, r = read_ct(target).hu, read_ct(recon).hu
        if t.shape != r.shape:
            raise InputFileError(recon, "shape", f"{t.shape} like the target {target.name}", f"{r.shape}")
        if args.metrics == "hu":
            m = sct_metrics(t, r, None, tuple(args.window) if args.window else CT_RANGE, None)
        else:
            m = hu_metrics(t, r, tuple(args.window) if args.window else DEFAULT_WINDOW, body_mask(t) if args.body else None)
        return {"file": target.name, **{k: float(v) for k, v in m.items() if isinstance(v, (int, float))}}

    return row


def _matched(target, recon, args: argparse.Namespace, field: str):
    """The target's ``--slices`` (all when not given) and the recon, refused unless their shapes agree."""
    from ..runtime import parse_slices

    slices = parse_slices(args.slices)
    if slices is not None:
        if max(slices) >= target.shape[0]:
            raise InputFileError(args.target, field, f"indices below {target.shape[0]}", f"{max(slices)} in --slices")
        target = target[slices]
    if recon.shape != target.shape:
        raise InputFileError(args.recon, field, f"shape {target.shape} like the target (or pass --slices)", f"{recon.shape}")
    return target, recon


def _evaluate_ct(args: argparse.Namespace) -> int:
    from ..datasets.ct_volume import read_ct
    from ..evaluation.ct_metrics import DEFAULT_WINDOW, body_mask, hu_metrics

    target, recon = _matched(read_ct(args.target).hu, read_ct(args.recon).hu, args, "slices")
    mask = body_mask(target) if args.body else None
    if mask is not None and not mask.any():
        raise InputFileError(args.target, "body", "a body above -500 HU for --body", "no voxel above -500 HU")
    return _report(hu_metrics(target, recon, tuple(args.window) if args.window else DEFAULT_WINDOW, mask), args)


def _evaluate_sct(args: argparse.Namespace) -> int:
    """Synthetic-CT metrics (medrecon.evaluation.sct_metrics) over the body mask."""

    from ..datasets.ct_volume import read_ct
    from ..datasets.file_access import load_nifti_volume
    from ..datasets.sct_training import check_hu
    from ..evaluation.sct_metrics import CT_RANGE, sct_metrics

    if args.body:
        raise ArgumentError("--body: a CT option; --metrics hu takes --mask (default: the target's body)")
    tv, rv = read_ct(args.target), read_ct(args.recon)
    for vol in (tv, rv):
        check_hu(vol)
    target, recon = _matched(tv.hu, rv.hu, args, "slices")
    mask = std = None
    if args.mask is not None:
        mask = load_nifti_volume(Path(args.mask))[0]
        if mask.shape != tv.hu.shape:
            raise InputFileError(args.mask, "shape", f"{tv.hu.shape} like the target", f"{mask.shape}")
        mask = _matched(mask, target, args, "slices")[0] != 0
        if not mask.any():
            raise InputFileError(args.mask, "mask", "at least one voxel inside (nonzero)", "an empty mask")
    if args.std is not None:
        std = read_ct(args.std).hu
        if std.shape != recon.shape:
            raise InputFileError(args.std, "shape", f"{recon.shape} like the recon", f"{std.shape}")
    return _report(sct_metrics(target, recon, mask, tuple(args.window) if args.window else CT_RANGE, std), args)


def _evaluate_oct(args: argparse.Namespace) -> int:
    """OCT metrics (medrecon.tasks.oct.metrics): regions from the target's B-scans."""
    from ..datasets.oct_images import read_oct
    from ..tasks.oct.metrics import oct_metrics

    if args.window is not None or args.body:
        raise ArgumentError("--window / --body: CT options; not used with OCT metrics")
    target, recon = _matched(read_oct(args.target, args.bscan_axis).bscans, read_oct(args.recon, args.bscan_axis).bscans, args, "B-scans")
    return _report(oct_metrics(target, recon), args)


def _report(m: dict[str, float | None], args: argparse.Namespace, document: dict | None = None) -> int:
    """Print a metrics table and, with ``--json``, write it (or ``document``) atomically (``None``: n/a / null)."""
    from ..atomic import atomic_output

    scalars = {k: v for k, v in m.items() if not isinstance(v, dict)}  # per-slice lists go to the JSON only
    width = max(len(k) for k in scalars) + 2
    print(f"{'metric':<{width}}{'value':>12}")
    for k, v in scalars.items():
        print(f"{k:<{width}}{v:>12.4f}" if v is not None else f"{k:<{width}}{'n/a':>12}")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"target": str(args.target), "recon": str(args.recon), **(document or m)}, indent=2))
    return 0
