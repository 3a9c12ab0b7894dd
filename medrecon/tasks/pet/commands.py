"""``medrecon simulate pet`` and ``medrecon reconstruct pet``: options, settings, files in and out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...errors import ArgumentError, InputFileError
from ..options import FiniteFloat, add_common_options, settings_from
from ..registry import TaskCommand, register
from .config import DEFAULT_ITERS, PET_METHODS

SCAN_OPTIONS = {"background_fraction": "--background-fraction", "efficiency_sd": "--efficiency-sd"}
RECON_OPTIONS = {"iterations": "--iters", "fwhm_mm": "--fwhm"}


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="PET/CT slice-pair .npz (pet_nac, ct), or a PET NIfTI with --ct")
    p.add_argument("--ct", default=None, help="CT in HU (NIfTI or DICOM series) for a NIfTI --input: attenuation and guide")
    p.add_argument("--unit", default="BQML", help="unit of a NIfTI --input's values (recorded; default BQML)")
    p.add_argument("--counts", type=float, action=FiniteFloat, default=None, help="expected prompts per slice, > 0 (default 5e6)")
    p.add_argument("--background-fraction", type=float, action=FiniteFloat, default=None, help="randoms + scatter share (default 0.3)")
    p.add_argument("--views", type=int, default=None, help="sinogram views over 180 deg (default 180)")
    p.add_argument("--efficiency-sd", type=float, action=FiniteFloat, default=None, help="detector efficiency spread (default 0)")
    p.add_argument("--slices", default=None, help="contiguous slice range, e.g. '0-3'")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output sinogram .h5")
    add_common_options(p, "scan")


def read_images(path: str, ct: str | None, slices: list[int] | None, unit: str):
    """The PET images of ``simulate pet`` (and PET training): an npz of slice pairs, or NIfTI + CT."""
    from ...datasets.pet_images import read_pet_ct_npz, read_pet_nifti_with_ct

    if path.lower().endswith(".npz"):
        if ct is not None:
            raise ArgumentError("--ct: the .npz carries its own CT slices; --ct is for a NIfTI --input")
        return read_pet_ct_npz(path, slices)
    if not path.lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(path, "input", "a PET/CT .npz or a PET NIfTI (.nii / .nii.gz)", repr(Path(path).name))
    if ct is None:
        raise ArgumentError("--ct: a NIfTI --input needs the co-registered CT (NIfTI or DICOM series in HU)")
    return read_pet_nifti_with_ct(path, ct, slices, unit)


def _simulate(args: argparse.Namespace) -> int:
    from ...atomic import check_not_an_input, check_output_path
    from ...runtime import parse_slices, select_device
    from .config import PETScanSpec
    from .simulate import simulate_pet

    if args.counts is not None and args.counts <= 0:
        raise ArgumentError(f"--counts: expected expected prompts per slice > 0, got {args.counts:g}")
    flags = {
        "counts": args.counts,
        "background_fraction": args.background_fraction,
        "views": args.views,
        "efficiency_sd": args.efficiency_sd,
        "seed": args.seed,
    }
    spec = settings_from(PETScanSpec, args, "scan", flags, flag_names=SCAN_OPTIONS)
    check_output_path(args.out)
    check_not_an_input(args.out, [("--input", args.input), ("--ct", args.ct)])
    device = select_device(args.device)
    images = read_images(args.input, args.ct, parse_slices(args.slices), args.unit)
    try:
        simulate_pet(images, spec, args.out, device=device)
    except ValueError as err:  # an empty slice
        raise InputFileError(args.input, "activity", "activity in every simulated slice", str(err)) from None
    n = images.activity.shape[0]
    print(f"wrote {args.out} ({n} slices, {spec.views} views, {spec.counts:g} prompts per slice, background {spec.background_fraction:g})")
    return 0


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="PET sinogram .h5 written by 'simulate pet'")
    p.add_argument("--method", default=None, choices=PET_METHODS, help="default osem")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help="passes over the data (default " + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items()) + ")",
    )
    p.add_argument("--subsets", type=int, default=None, help="ordered subsets of views (default 8)")
    p.add_argument("--fwhm", type=float, action=FiniteFloat, default=None, help="OSEM post-filter FWHM in mm (default 4)")
    p.add_argument("--beta", type=float, action=FiniteFloat, default=None, help="MAP-EM RDP weight, relative to the mean sensitivity")
    p.add_argument(
        "--out", required=True, help="output .nii / .nii.gz (activity in the source's unit); diffusion with --samples > 1 adds NAME_std"
    )
    g = p.add_argument_group("diffusion (defaults: PETDiffusionConfig)")
    g.add_argument("--prior", default=None, help="PET diffusion prior folder (prior.safetensors + prior.json)")
    g.add_argument("--guide", default=None, choices=("ct", "none"), help="a guided prior's guide: the sinogram's CT (default) or none")
    g.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    g.add_argument("--samples", type=int, default=None, help="posterior samples (> 1 also writes the std)")
    g.add_argument(
        "--start", type=float, action=FiniteFloat, default=None, help="fraction of the noise schedule to start from (OSEM warm start)"
    )
    g.add_argument("--seed", type=int, default=None)
    add_common_options(p, "recon")


def _reconstruct(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ...atomic import check_not_an_input, check_output_path
    from ...datasets.image_io import write_nifti
    from ...datasets.sinogram_io import read_sinogram
    from ...physics.pet import EmissionOperator
    from ...runtime import select_device
    from .config import PETReconConfig
    from .em import gaussian_postfilter, map_em_rdp, osem

    out = Path(args.out)
    if not out.name.lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(out, "output", "a .nii / .nii.gz file", repr(out.name))
    check_output_path(out)
    check_not_an_input(out, [("the sinogram", args.input)])
    method = args.method or ("diffusion" if args.prior is not None else "osem")
    if method != "diffusion" and any(getattr(args, k) is not None for k in ("prior", "guide", "steps", "samples", "start")):
        raise ArgumentError(f"--prior / --guide / --steps / --samples / --start: used with --method diffusion only, got --method {method}")
    sf = None
    if method == "diffusion":
        from ...diffusion.training import load_prior
        from ...runtime import resolve_prior
        from .config import PETDiffusionConfig
        from .diffusion import reconstruct_sinogram_diffusion

        if args.prior is None:
            raise ArgumentError("--prior: expected a PET prior folder with --method diffusion, got nothing")
        if any(getattr(args, k) is not None for k in ("iters", "subsets", "fwhm", "beta")):
            raise ArgumentError(
                "--iters / --subsets / --fwhm / --beta: classical settings; with --method diffusion use --steps / --set dc_iters=N"
            )
        flags = {k: getattr(args, k) for k in ("guide", "steps", "samples", "start", "seed")}
        dcfg = settings_from(PETDiffusionConfig, args, "diffusion", flags)
        std_path = _std_path(out)
        if dcfg.samples > 1:
            check_output_path(std_path)
            check_not_an_input(std_path, [("the sinogram", args.input)])
        denoiser = load_prior(resolve_prior(args.prior), device=select_device(args.device))
        sf = read_sinogram(args.input, modality="PET", arrays=("multiplicative", "background"))
        check_not_an_input(out, [("the sinogram's source", str(sf.attrs.get("source", "")) or None)])
        activity, std = reconstruct_sinogram_diffusion(sf, denoiser, dcfg, device=select_device(args.device))
        label = f"diffusion ({dcfg.samples} x {dcfg.steps} steps from OSEM at {dcfg.start:g}, guide {dcfg.guide})"
        written = []
        try:
            if dcfg.samples > 1:
                write_nifti(std, std_path, affine=sf.affine)
                written.append(std_path)
            write_nifti(activity, out, affine=sf.affine)
        except BaseException:
            for w in written:
                w.unlink(missing_ok=True)
            raise
        print(f"wrote {out} {activity.shape} in {sf.attrs.get('unit', 'counts')} ({label})" + (f" and {std_path}" if written else ""))
        return 0
    flags = {"method": method, "iterations": args.iters, "subsets": args.subsets, "fwhm_mm": args.fwhm, "beta": args.beta}
    cfg = settings_from(PETReconConfig, args, "recon", flags, flag_names=RECON_OPTIONS)
    device = select_device(args.device)
    sf = read_sinogram(args.input, modality="PET", arrays=("multiplicative", "background"))
    if cfg.subsets > sf.geometry.n_views:
        raise ArgumentError(f"--subsets: expected at most the sinogram's {sf.geometry.n_views} views, got {cfg.subsets}")
    if float(sf.sino.min()) < 0:
        raise InputFileError(sf.path, "sinogram", "prompt counts >= 0", f"minimum {float(sf.sino.min()):g}")
    check_not_an_input(out, [("the sinogram's source", str(sf.attrs.get("source", "")) or None)])
    calibration = np.asarray(json.loads(sf.attrs.get("calibration", "null")) or np.ones(sf.sino.shape[0]), dtype=np.float32)
    op = EmissionOperator(sf.geometry, torch.from_numpy(sf.arrays["multiplicative"])).to(device)
    y, r = (torch.from_numpy(a).to(device) for a in (sf.sino, sf.arrays["background"]))
    iters = cfg.iterations or DEFAULT_ITERS[cfg.method]
    if cfg.method == "osem":
        x = gaussian_postfilter(osem(op, y, r, iters, cfg.subsets), cfg.fwhm_mm, sf.geometry.voxel_size_mm[0])
        label = f"OSEM {iters} it x {cfg.subsets} subsets, {cfg.fwhm_mm:g} mm FWHM"
    else:
        x = map_em_rdp(op, y, r, cfg.beta, cfg.gamma, iters, cfg.subsets)
        label = f"MAP-EM (RDP beta {cfg.beta:g}, BSREM {iters} it x {cfg.subsets} subsets)"
    activity = x.cpu().numpy() * calibration[:, None, None]
    write_nifti(activity, out, affine=sf.affine)
    print(f"wrote {out} {activity.shape} in {sf.attrs.get('unit', 'counts')} ({label})")
    return 0


def _std_path(out: Path) -> Path:
    """``NAME_std.nii.gz`` beside ``NAME.nii.gz``."""
    name = out.name
    base = name[:-7] if name.lower().endswith(".nii.gz") else name[:-4]
    return out.with_name(base + "_std" + name[len(base) :])


register(TaskCommand("simulate", "pet", "simulate a 2-D PET emission scan from activity images and their CT", _add_simulate, _simulate))
register(
    TaskCommand("reconstruct", "pet", "PET from a sinogram file written by 'simulate pet' (OSEM, MAP-EM)", _add_reconstruct, _reconstruct)
)
