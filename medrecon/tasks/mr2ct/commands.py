"""``medrecon translate mr2ct``: an MR (NIfTI or DICOM series) → a synthetic CT as NIfTI or a CT DICOM series on the MR's geometry."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import ArgumentError
from ..options import add_common_options, settings_from
from ..registry import TaskCommand, register

OPTIONS = {k: f"--{k}" for k in ("method", "sampler", "steps", "samples", "seed", "batch")}


def _add_translate(p: argparse.ArgumentParser) -> None:
    from .config import SAMPLERS

    p.add_argument("--input", required=True, help="the MR: .nii / .nii.gz, a DICOM MR series folder or one DICOM MR file")
    p.add_argument(
        "--prior", default=None, help="synthetic-CT prior: a shipped name (mr2ct-head) or a folder (medrecon train, intensity: sct)"
    )
    p.add_argument(
        "--method",
        default=None,
        choices=("diffusion", "bulk"),
        help="diffusion (default; needs --prior) or bulk (bulk-density classes, no prior)",
    )
    p.add_argument("--sampler", default=None, choices=SAMPLERS, help="default: the prior's recommendation (see docs/results/mr2ct.md)")
    p.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    p.add_argument("--samples", type=int, default=None, help="posterior samples per slice (> 1 also writes the std beside the output)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch", type=int, default=None, help="slices sampled together")
    p.add_argument("--out", required=True, help="a .nii / .nii.gz file, or a new folder for a CT DICOM series in the MR's study")
    add_common_options(p, "translate")


def _translate(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from ...datasets.ct_volume import write_dicom_series
    from ...datasets.image_io import write_nifti
    from ...datasets.mr_volume import mr_scale, read_mr
    from ...diffusion.training import load_prior
    from ...runtime import resolve_prior, select_device
    from ..outputs import check_volume_output, write_mean_and_std
    from .bulk import bulk_density_ct
    from .config import TranslateConfig
    from .translate import check_prior_for_sct, posterior_settings, print_notes, sampler_for, translate_mr

    method = args.method or "diffusion"
    if method == "diffusion" and args.prior is None:
        raise ArgumentError("--prior: needed for --method diffusion (e.g. --prior mr2ct-head), or use --method bulk")
    if method == "bulk" and args.prior is not None:
        raise ArgumentError(f"--prior: not used by --method bulk, got --prior {args.prior}")
    out, as_dicom = check_volume_output(Path(args.out), [("--input", args.input)])
    device = select_device(args.device)
    denoiser = None
    recommended = {}
    if method == "diffusion":
        denoiser = load_prior(resolve_prior(args.prior), device=device)
        recommended = check_prior_for_sct(denoiser, args.input).get("recommended", {}).get("mr2ct", {})
    flags = {k: getattr(args, k) for k in OPTIONS}
    flags["method"] = method
    cfg = settings_from(TranslateConfig, args, "translate", flags, recommended, flag_names=OPTIONS)
    if denoiser is not None:
        posterior_settings(denoiser, cfg)  # a sampler that does not fit the prior is refused before any work
    mr = read_mr(args.input)
    if method == "bulk":
        col, row = (float(v) for v in np.linalg.norm(mr.affine[:3, :2], axis=0))
        hu, std, label = bulk_density_ct(mr.values / mr_scale(mr.values, args.input), (row, col), cfg), None, "bulk density"
    else:
        with tqdm(total=None, desc=f"mr2ct {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
            sct = translate_mr(mr, denoiser, cfg, device, progress=bar.update)
        print_notes(sct.notes)
        hu, std = sct.hu, sct.std
        label = f"medrecon synthetic CT ({sampler_for(denoiser, cfg)}, {cfg.samples} x {cfg.steps} steps)"

    def write(vol, path: Path, what: str) -> None:
        if as_dicom:
            write_dicom_series(vol, mr.affine, path, reference=mr if mr.headers else None, description=label + what)
        else:
            write_nifti(vol, path, affine=mr.affine, description=f"medrecon sCT HU{what}")

    spath = write_mean_and_std(hu, std, out, as_dicom, write, args.input)
    if spath is not None:
        print(f"wrote {spath} (per-voxel std over the samples, HU)")
    print(f"wrote {out} {hu.shape} in HU ({label})")
    return 0


register(
    TaskCommand("translate", "mr2ct", "MR → synthetic CT in HU (conditional diffusion prior, or bulk density)", _add_translate, _translate)
)
