"""``medrecon denoise oct``: options, settings, B-scans in and out (the input's format and data type)."""

from __future__ import annotations

import argparse
import sys

from ..options import FiniteFloat, add_common_options, settings_from
from ..registry import TaskCommand, register
from .config import OCT_METHODS, OCTDenoiseConfig

DENOISE_OPTIONS = {"method": "--method", "sigma": "--sigma"}


def _add_denoise(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="noisy B-scans: .tif / .tiff (pages = B-scans), .png, a folder of them, or a .nii / .nii.gz volume")
    p.add_argument(
        "--method",
        default=None,
        choices=OCT_METHODS,
        help=f"classical denoiser (default {OCTDenoiseConfig().method}: the best measured, docs in OCTDenoiseConfig)",
    )
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
    add_common_options(p, "denoise", device=False)


def _denoise(args: argparse.Namespace) -> int:
    import numpy as np

    from ...atomic import check_not_an_input
    from ...datasets.oct_images import check_oct_output, read_oct, write_oct
    from ..outputs import check_result
    from .baselines import denoise_bscans

    cfg = settings_from(OCTDenoiseConfig, args, "denoise", {"method": args.method, "sigma": args.sigma}, flag_names=DENOISE_OPTIONS)
    check_not_an_input(args.out, [("the input", args.input)])
    out = check_oct_output(args.input, args.out)
    images = read_oct(args.input, args.bscan_axis)
    for note in images.notes:
        print(f"medrecon: note: {note}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > 1:
            print(f"\r{cfg.method}: {done}/{total} B-scans", end="\n" if done == total else "", file=sys.stderr, flush=True)

    result, sigmas = denoise_bscans(images.bscans, cfg, source=args.input, progress=progress)
    check_result(result, args.input, "denoised B-scans")
    write_oct(images, result, out)
    how = "given" if cfg.sigma is not None else "estimated"
    span = f"{sigmas[0]:.3g}" if np.ptp(sigmas) == 0 else f"{sigmas.min():.3g}–{sigmas.max():.3g}"
    count = f"{len(result)} B-scan{'s' if len(result) > 1 else ''}"
    print(f"wrote {out} ({count}, {cfg.method}, noise σ {how} {span})")
    return 0


register(TaskCommand("denoise", "oct", "speckle denoising of retinal OCT B-scans (BM3D, non-local means, TV)", _add_denoise, _denoise))
