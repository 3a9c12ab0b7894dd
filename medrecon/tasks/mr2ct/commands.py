"""``medrecon translate mr2ct`` / ``pet2ct``: an MR or a NAC-PET → a synthetic CT as NIfTI or a CT DICOM series on the input's geometry."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

import numpy as np

from ...errors import ArgumentError, InputFileError
from ..folder_run import add_out_format, image_spec, run_inputs
from ..options import add_common_options, settings_from
from ..registry import TaskCommand, register

OPTIONS = {k: f"--{k}" for k in ("method", "sampler", "steps", "samples", "summary", "seed", "batch", "mirror")}
INPUTS = {
    "MR": "the MR: .nii / .nii.gz, a DICOM MR series folder or one DICOM MR file; or a folder of NIfTI files / series folders",
    "PET": "the non-attenuation-corrected PET: .nii / .nii.gz, a PET DICOM series folder, or a PET/CT slice-pair .npz; or a folder of them",
}


def _add_translate(p: argparse.ArgumentParser, modality: str) -> None:
    from .config import SAMPLERS

    p.add_argument("--input", required=True, help=INPUTS[modality])
    shipped = " (mr2ct-head)" if modality == "MR" else ""
    p.add_argument(
        "--prior", default=None, help=f"synthetic-CT prior: a shipped name{shipped} or a folder (medrecon train, intensity: sct)"
    )
    if modality == "MR":
        p.add_argument(
            "--method",
            default=None,
            choices=("diffusion", "bulk"),
            help="diffusion (default; needs --prior) or bulk (bulk-density classes)",
        )
    p.add_argument("--sampler", default=None, choices=SAMPLERS, help="default: the prior's recommendation (see docs/results/mr2ct.md)")
    p.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    p.add_argument("--samples", type=int, default=None, help="posterior samples per slice (> 1 also writes the std beside the output)")
    p.add_argument(
        "--summary", default=None, choices=("mean", "median"), help="the synthetic CT of the samples: their mean or per-voxel median"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--mirror",
        default=None,
        action=argparse.BooleanOptionalAction,
        help="every other sample drawn on the left-right mirrored input (a regression prior averages both); default: the prior's recommendation, else off",
    )
    p.add_argument("--batch", type=int, default=None, help="slices sampled together")
    p.add_argument("--out", required=True, help="a .nii / .nii.gz file, or a new folder for a CT DICOM series in the input's study")
    add_out_format(p)
    add_common_options(p, "translate")


def _read_input(path: str, modality: str):
    """``(values (slices, rows, cols), affine, headers)`` of the input."""
    if modality == "MR":
        from ...datasets.mr_volume import read_mr

        mr = read_mr(path)
        return mr.values, mr.affine, mr.headers
    from ...datasets.file_access import load_nifti_volume
    from ...datasets.pet_dicom import read_pet
    from ...datasets.pet_images import read_pet_ct_npz

    p = Path(path)
    if p.suffix.lower() == ".npz":
        im = read_pet_ct_npz(p)
        values, affine, headers = im.activity, im.affine, []
    elif p.name.lower().endswith((".nii", ".nii.gz")):
        values, affine = load_nifti_volume(p)
        headers = []
    else:
        vol = read_pet(p, "as-stored")
        values, affine, headers = vol.values, vol.affine, vol.headers
    if not np.all(np.isfinite(values)) or float(values.min()) < 0:
        raise InputFileError(path, "image", "finite activity >= 0", "NaN, Inf or negative values")
    return values, affine, headers


def _translate(args: argparse.Namespace, modality: str) -> int:
    suffixes = (".nii", ".nii.gz") if modality == "MR" else (".nii", ".nii.gz", ".npz")
    return run_inputs(args, lambda a: _translate_one(a, modality), image_spec(args, suffixes), input_label="--input")


def _translate_one(args: argparse.Namespace, modality: str) -> int:
    from tqdm import tqdm

    from ...datasets.ct_volume import write_dicom_series
    from ...datasets.image_io import write_nifti
    from ...datasets.mr_volume import mr_scale
    from ...diffusion.prior_folder import load_prior
    from ...runtime import resolve_prior, select_device
    from ..outputs import check_volume_output, write_mean_and_std
    from .bulk import bulk_density_ct
    from .config import TranslateConfig
    from .translate import (
        check_prior_for_sct,
        mirror_views_dim,
        posterior_settings,
        print_notes,
        recommended_settings,
        sampler_for,
        translate_volume,
    )

    task = "mr2ct" if modality == "MR" else "pet2ct"
    method = getattr(args, "method", None) or "diffusion"
    if method == "diffusion" and args.prior is None:
        raise ArgumentError("--prior: needed for --method diffusion (e.g. --prior mr2ct-head), or use --method bulk")
    if method == "bulk" and args.prior is not None:
        raise ArgumentError(f"--prior: not used by --method bulk, got --prior {args.prior}")
    out, as_dicom = check_volume_output(args.out, [("--input", args.input)])
    device = select_device(args.device)
    denoiser = None
    recommended = {}
    if method == "diffusion":
        denoiser = load_prior(resolve_prior(args.prior), device=device)
        check_prior_for_sct(denoiser, args.input, modality)
        recommended = recommended_settings(denoiser, task)
    flags = {k: getattr(args, k, None) for k in OPTIONS}
    flags["method"] = method
    cfg = settings_from(TranslateConfig, args, "translate", flags, recommended, flag_names=OPTIONS)
    if denoiser is not None:
        posterior_settings(denoiser, cfg)  # a sampler that does not fit the prior is refused before any work
    values, affine, headers = _read_input(args.input, modality)
    if method == "bulk":
        col, row = (float(v) for v in np.linalg.norm(affine[:3, :2], axis=0))
        hu, std, label = bulk_density_ct(values / mr_scale(values, args.input), (row, col), cfg), None, "bulk density"
    else:
        with tqdm(total=None, desc=f"{task} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
            sct = translate_volume(values, affine, str(args.input), denoiser, cfg, modality, device, progress=bar.update)
        print_notes(sct.notes)
        hu, std = sct.hu, sct.std
        views = ", mirror views" if mirror_views_dim(denoiser, cfg) is not None else ""
        label = f"medrecon sCT from {modality} ({sampler_for(denoiser, cfg)}, {cfg.samples} x {cfg.steps} steps{views})"

    def write(vol, path: Path, what: str) -> None:
        if as_dicom:
            write_dicom_series(vol, affine, path, headers, description=label + what)
        else:
            write_nifti(vol, path, affine=affine, description=f"medrecon sCT HU{what}")

    spath = write_mean_and_std(hu, std, out, as_dicom, write, args.input)
    if spath is not None:
        print(f"wrote {spath} (per-voxel std over the samples, HU)")
    print(f"wrote {out} {hu.shape} in HU ({label})")
    return 0


register(
    TaskCommand(
        "translate",
        "mr2ct",
        "MR → synthetic CT in HU (conditional diffusion prior, or bulk density)",
        partial(_add_translate, modality="MR"),
        partial(_translate, modality="MR"),
    )
)
register(
    TaskCommand(
        "translate",
        "pet2ct",
        "NAC-PET → synthetic CT in HU for attenuation correction (conditional diffusion prior)",
        partial(_add_translate, modality="PET"),
        partial(_translate, modality="PET"),
    )
)
