"""``medrecon denoise oct``: options, settings, B-scans in and out (the input's format and data type)."""

from __future__ import annotations

import argparse
import shutil
import sys

from ...datasets.oct_vendor import VENDOR_SUFFIXES, is_vendor
from ...errors import ArgumentError
from ..folder_run import FolderSpec, run_inputs, stem
from ..options import FiniteFloat, add_common_options, settings_from
from ..registry import TaskCommand, register
from .config import OCT_METHODS, OCTDenoiseConfig, OCTDiffusionConfig

DENOISE_OPTIONS = {"method": "--method", "sigma": "--sigma"}
DIFFUSION_OPTIONS = {"samples": "--samples", "steps": "--steps", "seed": "--seed"}


def _add_denoise(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input",
        help="noisy B-scans: .tif / .tiff (pages = B-scans), .png, a folder of them, a .nii / .nii.gz volume, a DICOM OPT .dcm "
        "file or a vendor file (.e2e, .fds, .fda, .img, .oct; written as --out .tif / .nii.gz / .dcm); or a folder of volumes "
        "(NIfTI, DICOM OPT, vendor files, sub-folders of B-scans), each denoised into OUT/<its name> (vendor files: OUT/<name>.tif)",
    )
    p.add_argument(
        "--method",
        default=None,
        choices=(*OCT_METHODS, "diffusion"),
        help=f"denoiser (default: diffusion with --prior, else {OCTDenoiseConfig().method}; the best measured)",
    )
    p.add_argument("--prior", default=None, help="OCT diffusion prior folder (medrecon train with intensity: oct)")
    p.add_argument("--samples", type=int, default=None, help="diffusion: posterior samples (> 1 also writes NAME_std beside the output)")
    p.add_argument("--steps", type=int, default=None, help="diffusion: network evaluations per sample")
    p.add_argument("--seed", type=int, default=None, help="diffusion: seed of the sampler")
    p.add_argument(
        "--sigma",
        type=float,
        action=FiniteFloat,
        default=None,
        help="noise σ in the images' stored units for every B-scan (default: estimated from each B-scan)",
    )
    p.add_argument(
        "--bscan-axis",
        type=int,
        default=None,
        choices=(0, 1, 2),
        help="NIfTI: the voxel axis of the B-scans (default: the axis with the coarsest spacing, when clear)",
    )
    p.add_argument("--out", required=True, help="output in the input's format and data type (a new or empty folder for a folder)")
    add_common_options(p, "denoise")


def _out_name(name: str) -> str:
    """A folder run's output name: the input's, a vendor file's as a TIFF stack (written for any of its types)."""
    return stem(name) + ".tif" if is_vendor(name) else name


def _denoise(args: argparse.Namespace) -> int:
    # a folder of TIFF / PNG B-scans is one stack; a folder of volumes (NIfTI, DICOM OPT, vendor files, sub-folders of B-scans) is a folder run
    return run_inputs(args, _denoise_one, FolderSpec((".nii", ".nii.gz", ".dcm", *VENDOR_SUFFIXES), _out_name, series=True))


def _denoise_one(args: argparse.Namespace) -> int:
    import numpy as np

    from ...atomic import check_not_an_input
    from ...datasets.oct_images import read_oct
    from ...datasets.oct_output import check_oct_output, check_oct_writable, write_oct
    from ..outputs import check_result
    from .baselines import denoise_bscans

    method = args.method or ("diffusion" if args.prior is not None else None)
    if method == "diffusion":
        return _denoise_diffusion(args)
    if args.prior is not None:
        raise ArgumentError(f"--prior: only with --method diffusion, got --method {method}")
    cfg = settings_from(OCTDenoiseConfig, args, "denoise", {"method": method, "sigma": args.sigma}, flag_names=DENOISE_OPTIONS)
    check_not_an_input(args.out, [("the input", args.input)])
    out = check_oct_output(args.input, args.out)
    images = read_oct(args.input, args.bscan_axis)
    check_oct_writable(images, out)
    _print_notes(images.notes)
    result, sigmas = denoise_bscans(images.bscans, cfg, source=args.input, progress=_progress(args, cfg.method))
    check_result(result, args.input, "denoised B-scans")
    write_oct(images, result, out)
    how = "given" if cfg.sigma is not None else "estimated"
    span = f"{sigmas[0]:.3g}" if np.ptp(sigmas) == 0 else f"{sigmas.min():.3g}–{sigmas.max():.3g}"
    print(f"wrote {out} ({_count(len(result))}, {cfg.method}, noise σ {how} {span})")
    return 0


def _denoise_diffusion(args: argparse.Namespace) -> int:
    from ...atomic import check_not_an_input
    from ...datasets.oct_images import read_oct, stored_dtypes
    from ...datasets.oct_output import check_oct_output, check_oct_writable, oct_std_path, write_oct
    from ...diffusion.prior_folder import load_prior
    from ...runtime import resolve_prior, select_device
    from ..outputs import check_result
    from .diffusion import check_prior_for_oct, denoise_bscans_diffusion

    if args.prior is None:
        raise ArgumentError("--method diffusion: needs --prior (an OCT prior folder: medrecon train --config configs/oct_ddpm.yaml)")
    if args.sigma is not None:
        raise ArgumentError("--sigma: only with the classical methods (diffusion estimates σ on the prior's scale)")
    flags = {k: getattr(args, k) for k in DIFFUSION_OPTIONS}
    cfg = settings_from(OCTDiffusionConfig, args, "denoise", flags, flag_names=DIFFUSION_OPTIONS)
    check_not_an_input(args.out, [("the input", args.input), ("--prior", args.prior)])
    out = check_oct_output(args.input, args.out)
    std_out = oct_std_path(out) if cfg.samples > 1 else None
    if std_out is not None:
        check_not_an_input(std_out, [("the input", args.input)])
        check_oct_output(args.input, std_out)
    device = select_device(args.device)
    denoiser = load_prior(resolve_prior(args.prior), device=device)
    images = read_oct(args.input, args.bscan_axis)
    check_oct_writable(images, out)
    for dtype in stored_dtypes(images):
        check_prior_for_oct(denoiser, dtype, cfg, args.input)
    _print_notes(images.notes)
    mean, std, sigmas = denoise_bscans_diffusion(
        images.bscans, denoiser, cfg, device, progress=_progress(args, "diffusion"), source=args.input
    )
    check_result(mean, args.input, "denoised B-scans")
    if std_out is not None:  # the std first: an existing mean is a finished result (folder runs skip it)
        write_oct(images, std, std_out)
    try:
        write_oct(images, mean, out)
    except BaseException:  # no std without its mean
        if std_out is not None:
            shutil.rmtree(std_out) if std_out.is_dir() else std_out.unlink(missing_ok=True)
        raise
    label = f"diffusion, mean of {cfg.samples} x {cfg.steps} steps from {cfg.start_level:g} σ̂ to {cfg.end_level:g} σ̂"
    print(f"wrote {out} ({_count(len(mean))}, {label}; noise σ̂ {sigmas.min():.3g}–{sigmas.max():.3g})")
    if std_out is not None:
        print(f"wrote {std_out} (per-pixel std over the samples)")
    return 0


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        print(f"medrecon: note: {note}", file=sys.stderr)


def _count(n: int) -> str:
    return f"{n} B-scan{'s' if n > 1 else ''}"


def _progress(args: argparse.Namespace, label: str):
    def progress(done: int, total: int) -> None:
        if not args.quiet and total > 1:
            print(f"\r{label}: {done}/{total} B-scans", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return progress


register(
    TaskCommand(
        "denoise", "oct", "speckle denoising of retinal OCT B-scans (diffusion prior, BM3D, non-local means, TV)", _add_denoise, _denoise
    )
)
