"""``medrecon simulate mri`` and ``medrecon reconstruct mri``: options, settings, files in and out."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from ...errors import ArgumentError, InputFileError
from ...physics.mri.masks import MASK_KINDS_1D, MASK_KINDS_2D
from ..folder_run import FolderSpec, add_out_format, h5_name, image_spec, run_inputs
from ..options import FiniteFloat, add_common_options, settings_from
from ..outputs import check_result
from ..registry import TaskCommand, register
from .config import DEFAULT_LAM, METHODS

RECON_SUFFIXES = (".nii", ".nii.gz", ".h5", ".hdf5")
RAW = (".h5", ".hdf5", ".npz")


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="fully sampled fastMRI / SKM-TEA .h5 or .npz, or a folder of them")
    p.add_argument("--mask", default=None, choices=MASK_KINDS_1D + MASK_KINDS_2D, help="default equispaced_fraction")
    p.add_argument("--accel", type=float, action=FiniteFloat, default=None, help="acceleration (default 4)")
    p.add_argument(
        "--center-fraction", type=float, action=FiniteFloat, default=None, help="fully sampled centre fraction, 1-D masks (default 0.08)"
    )
    p.add_argument("--calib", type=int, default=None, help="calibration square side, 2-D masks (default 24)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output .h5 (fastMRI multi-coil layout), or a folder for a folder")
    add_common_options(p, "mask", device=False)


def _simulate(args: argparse.Namespace) -> int:
    return run_inputs(args, _simulate_one, FolderSpec(RAW, h5_name), input_label="--input")


def _simulate_one(args: argparse.Namespace) -> int:
    from ...atomic import check_not_an_input, check_output_path
    from ...datasets.open_kspace import open_kspace
    from .config import MaskSpec
    from .simulate import simulate_undersampling

    spec = settings_from(
        MaskSpec,
        args,
        "mask",
        {"kind": args.mask, "acceleration": args.accel, "center_fraction": args.center_fraction, "calib": args.calib, "seed": args.seed},
        flag_names={"kind": "--mask", "acceleration": "--accel"},
    )
    check_output_path(args.out)
    check_not_an_input(args.out, [("--input", args.input)])
    src = open_kspace(args.input)
    out = simulate_undersampling(src, spec, args.out)
    print(f"wrote {out} ({src.num_slices} slices, {spec.kind} {spec.acceleration:g}x, seed {spec.seed})")
    return 0


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "input", help="undersampled fastMRI / SKM-TEA / ISMRMRD .h5 or .npz, or a folder of them (run with torchrun to share it)"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output .nii, .nii.gz or .h5, or a folder for an MR DICOM series (ISMRMRD input; diffusion with several "
        "samples also writes the std); for a folder input, a folder of fastMRI submission files NAME.h5 (see --out-format; "
        "finished ones are skipped on a rerun)",
    )
    p.add_argument(
        "--method",
        default=None,
        choices=METHODS + ("diffusion",),
        help="default: diffusion when --prior is given, else the config's method or cs",
    )
    p.add_argument("--prior", default=None, help="diffusion prior: a folder (prior.safetensors + prior.json) or 'brain' (shipped)")
    p.add_argument(
        "--lam",
        type=float,
        action=FiniteFloat,
        default=None,
        help="classical regularisation weight, relative (default " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LAM.items()) + ")",
    )
    p.add_argument("--iters", type=int, default=None, help="classical solver iterations (default sense 30, cs 100)")
    g = p.add_argument_group("diffusion (defaults: the prior's recommendation for the data's acceleration, else DiffusionConfig)")
    g.add_argument("--sampler", default=None, choices=("dds", "ddim", "ddpm", "ve_pc"))
    g.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    g.add_argument("--eta", type=float, action=FiniteFloat, default=None, help="DDIM eta")
    g.add_argument("--dc", default=None, choices=("cg", "grad", "hard", "none"), help="data consistency")
    g.add_argument("--dc-iters", type=int, default=None, help="iterations of the data-consistency step")
    g.add_argument("--dc-lam", type=float, action=FiniteFloat, default=None, help="proximal weight of the CG step (0: DDS)")
    g.add_argument(
        "--start",
        type=float,
        action=FiniteFloat,
        default=None,
        help="fraction of the noise schedule to start from (< 1: warm start from --init)",
    )
    g.add_argument("--init", default=None, choices=("sense", "cs"), help="warm-start estimate")
    g.add_argument("--phase", default=None, choices=("auto", "demodulate", "keep"), help="remove the image's smooth phase before sampling")
    g.add_argument("--samples", type=int, default=None, help="posterior samples (> 1 also writes the std)")
    g.add_argument("--batch-slices", type=int, default=None, help="slices sampled together in one batch (raise on a GPU)")
    g.add_argument("--seed", type=int, default=None)
    p.add_argument("--slices", default=None, help="e.g. '0-3,7' (default: all)")
    p.add_argument("--echo", type=int, default=0, help="SKM-TEA echo")
    add_out_format(p, ("h5", "nifti", "dicom"))
    add_common_options(p, "recon / diffusion")


def _check_recon_out(given: str, source: str) -> bool:
    """The output (and a NIfTI or DICOM output's std) before any work; returns whether it is a DICOM series folder.

    A path ending in ``/``, an existing folder or a name without suffix is a new MR DICOM series.
    """
    from ...atomic import check_not_an_input, check_output_path
    from ..outputs import check_volume_output, std_path

    out = Path(given)
    named_like_a_file = out.name.lower().endswith(RECON_SUFFIXES)
    if str(given).endswith(("/", os.sep)) or (out.is_dir() and not named_like_a_file) or out.suffix == "":
        check_volume_output(out, [("the input", source)])
        check_not_an_input(std_path(out, True), [("the input", source)])
        return True
    check_output_path(out)
    if not out.name.lower().endswith(RECON_SUFFIXES):
        raise InputFileError(out, "output file type", "a .nii, .nii.gz or .h5 name, or a folder (MR DICOM series)", repr(out.name))
    check_not_an_input(out, [("the input", source)])
    if out.name.lower().endswith((".nii", ".nii.gz")):
        check_not_an_input(std_path(out, False), [("the input", source)])
    return False


def _dicom_reference(src, slices: list[int] | None):
    """The affine and identifiers of a DICOM output, refused before any work when the file records no geometry."""
    if slices is not None and slices != list(range(slices[0], slices[0] + len(slices))):
        raise ArgumentError(f"--slices: expected a contiguous range for a DICOM series (one slice spacing), got {slices}")
    ref = src.dicom_reference()
    if ref is None:
        raise InputFileError(
            src.path,
            "geometry",
            "slice positions and orientation (ISMRMRD acquisition headers) for a DICOM series",
            f"a {src.format} file, which records none; write .h5 or .nii.gz instead",
        )
    affine, header = ref
    if slices:
        affine = affine.copy()
        affine[:3, 3] += affine[:3, 2] * slices[0]
    return affine, header


def _write_image(volume, std, out: Path, as_dicom: bool, src, reference, description: str) -> None:
    """The mean (and std) as NIfTI or an MR DICOM series, the std first; no half of a result."""
    from ...datasets.image_io import write_volume
    from ...datasets.mr_volume import write_mr_series
    from ..outputs import write_mean_and_std

    def write(vol, path: Path, what: str) -> None:
        if as_dicom:
            write_mr_series(vol, reference[0], path, reference[1], description + what)
        else:
            write_volume(vol, path, src.geometry.voxel_size_mm)

    spath = write_mean_and_std(volume, std, out, as_dicom, write, src.path)
    if spath is not None:
        print(f"wrote {spath} (per-voxel std over the samples)")


def _acceleration(src) -> float | None:
    """The file's recorded acceleration, else the inverse fraction of sampled k-space locations."""
    import numpy as np

    rec = src.attrs.get("acceleration")
    if rec is not None:
        return float(rec)
    frac = float(np.mean(src.sampling_pattern(0)))
    return 1.0 / frac if frac > 0 else None


def _reconstruct(args: argparse.Namespace) -> int:
    return run_inputs(args, _reconstruct_one, image_spec(args, RAW, series=False, default="h5"))


def _reconstruct_one(args: argparse.Namespace) -> int:
    if args.echo < 0:
        raise ArgumentError(f"--echo: expected an echo index >= 0, got {args.echo}")
    method = args.method or ("diffusion" if args.prior is not None else None)
    if method == "diffusion":
        return _reconstruct_diffusion(args)
    if args.prior is not None:
        raise ArgumentError(f"--prior: expected --method diffusion (the only method that uses a prior), got --method {method}")
    from tqdm import tqdm

    from ...datasets.image_io import write_recon_h5
    from ...datasets.open_kspace import open_kspace
    from ...runtime import parse_slices, select_device
    from .config import ClassicalConfig
    from .volume import reconstruct_volume

    config = settings_from(ClassicalConfig, args, "recon", {"method": method, "lam": args.lam, "iters": args.iters})
    out = Path(args.out)
    as_dicom = _check_recon_out(args.out, args.input)
    slices = parse_slices(args.slices)
    device = select_device(args.device)
    src = open_kspace(args.input, echo=args.echo)
    reference = _dicom_reference(src, slices) if as_dicom else None
    n = src.num_slices if slices is None else len(slices)
    with tqdm(total=n, desc=f"{config.method} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
        vol = reconstruct_volume(src, config, slices, device=device, progress=lambda done, total: bar.update(1))
    attrs = {"method": config.method, "source": Path(src.path).name, "slices": json.dumps(slices if slices is not None else list(range(n)))}
    accel = _acceleration(src)
    if accel is not None:
        attrs["acceleration"] = accel  # evaluate groups volumes by it
    check_result(vol, args.input)
    if out.name.lower().endswith((".h5", ".hdf5")):
        write_recon_h5(vol, out, attrs=attrs)
    else:
        _write_image(vol, None, out, as_dicom, src, reference, f"medrecon {config.method}")
    print(f"wrote {out} {tuple(vol.shape)}")
    return 0


def _reconstruct_diffusion(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...datasets.image_io import write_recon_h5
    from ...datasets.open_kspace import open_kspace
    from ...diffusion.prior_folder import load_prior
    from ...runtime import parse_slices, resolve_prior, select_device
    from .config import DiffusionConfig, recommended_settings
    from .diffusion import demodulates, reconstruct_volume_diffusion

    if args.prior is None:
        raise ArgumentError("--prior: expected a prior folder or 'brain' with --method diffusion, got nothing")
    if args.lam is not None or args.iters is not None:
        raise ArgumentError("--lam / --iters: expected none with --method diffusion (use --dc-lam / --dc-iters), got classical settings")
    out = Path(args.out)
    as_dicom = _check_recon_out(args.out, args.input)
    slices = parse_slices(args.slices)
    device = select_device(args.device)
    denoiser = load_prior(resolve_prior(args.prior), device=device)
    src = open_kspace(args.input, echo=args.echo)
    reference = _dicom_reference(src, slices) if as_dicom else None
    accel = _acceleration(src)
    flags = {
        k: getattr(args, k)
        for k in ("sampler", "steps", "eta", "dc", "dc_iters", "dc_lam", "start", "init", "phase", "samples", "batch_slices", "seed")
    }
    recommended = recommended_settings(getattr(denoiser, "info", {}), accel)
    cfg = settings_from(DiffusionConfig, args, "diffusion", flags, recommended)
    n = src.num_slices if slices is None else len(slices)
    with tqdm(total=n, desc=f"diffusion {cfg.sampler} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:

        def prog(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        mean, std = reconstruct_volume_diffusion(src, denoiser, cfg, slices, device=device, progress=prog)
    attrs = {
        "method": f"diffusion-{cfg.sampler}",
        "prior": str(args.prior),
        "samples": cfg.samples,
        "steps": cfg.steps,
        "start": cfg.start,
        "init": cfg.init if cfg.start < 1 else "noise",
        "phase": "demodulated" if demodulates(denoiser, cfg) else "kept",
        "settings": json.dumps(cfg.model_dump()),
        "recommended_for_acceleration": -1.0 if accel is None else float(accel),
        **({} if accel is None else {"acceleration": float(accel), "source": Path(src.path).name}),
        "prior_training_steps": int(getattr(denoiser, "info", {}).get("training_steps", -1)),
    }
    check_result(mean, args.input)
    name = out.name.lower()
    if name.endswith((".h5", ".hdf5")):
        write_recon_h5(mean, out, std=std if cfg.samples > 1 else None, attrs=attrs)
    else:
        _write_image(mean, std if cfg.samples > 1 else None, out, as_dicom, src, reference, f"medrecon diffusion-{cfg.sampler}")
    print(
        f"wrote {out} {tuple(mean.shape)} ({cfg.sampler}, {cfg.samples} x {cfg.steps} steps from "
        f"{'noise' if cfg.start >= 1 else f'{cfg.init} at {cfg.start:g}'})"
    )
    return 0


register(TaskCommand("simulate", "mri", "retrospectively undersample fully sampled k-space into a fastMRI file", _add_simulate, _simulate))
register(
    TaskCommand(
        "reconstruct",
        "mri",
        "multi-coil MRI from fastMRI / SKM-TEA / ISMRMRD .h5 or .npz (classical or diffusion)",
        _add_reconstruct,
        _reconstruct,
    )
)
