"""``medrecon simulate pet`` and ``medrecon reconstruct pet``: options, settings, files in and out."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import ArgumentError, InputFileError
from ..folder_run import FolderSpec, add_out_format, h5_name, image_spec, run_inputs
from ..options import FiniteFloat, add_common_options, settings_from
from ..registry import TaskCommand, register
from .config import DEFAULT_ITERS, PET_METHODS

SCAN_OPTIONS = {"background_fraction": "--background-fraction", "efficiency_sd": "--efficiency-sd"}
RECON_OPTIONS = {"iterations": "--iters", "fwhm_mm": "--fwhm"}


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="PET/CT slice-pair .npz (pet_nac, ct), or a PET DICOM series / NIfTI with --ct")
    p.add_argument("--ct", default=None, help="CT in HU (NIfTI or DICOM series) for a PET series / NIfTI: attenuation and guide")
    p.add_argument(
        "--unit",
        default="as-stored",
        choices=("as-stored", "BQML", "SUVbw"),
        help="activity unit (DICOM: converted; NIfTI: what the values are)",
    )
    p.add_argument("--counts", type=float, action=FiniteFloat, default=None, help="expected prompts per slice, > 0 (default 5e6)")
    p.add_argument("--background-fraction", type=float, action=FiniteFloat, default=None, help="randoms + scatter share (default 0.3)")
    p.add_argument("--views", type=int, default=None, help="sinogram views over 180 deg (default 180)")
    p.add_argument("--efficiency-sd", type=float, action=FiniteFloat, default=None, help="detector efficiency spread (default 0)")
    p.add_argument("--slices", default=None, help="contiguous slice range, e.g. '0-3'")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output sinogram .h5")
    add_common_options(p, "scan")


def read_images(path: str, ct: str | None, slices: list[int] | None, unit: str):
    """The PET images of ``simulate pet``: an npz of slice pairs, or a PET series / NIfTI with its CT."""
    from ...datasets.pet_images import read_pet_ct_npz, read_pet_with_ct

    if path.lower().endswith(".npz"):
        if ct is not None:
            raise ArgumentError(f"--ct: expected no --ct with an .npz --input (it carries its own CT slices), got --ct {ct}")
        return read_pet_ct_npz(path, slices)
    if ct is None:
        raise ArgumentError("--ct: expected the co-registered CT (NIfTI or DICOM series in HU) for a PET series or NIfTI --input, got none")
    return read_pet_with_ct(path, ct, slices, unit)


def _simulate(args: argparse.Namespace) -> int:
    spec = FolderSpec((".npz", ".nii", ".nii.gz"), h5_name, series=True, paired=("--ct",))
    return run_inputs(args, _simulate_one, spec, input_label="--input")


def _simulate_one(args: argparse.Namespace) -> int:
    from ...atomic import check_not_an_input, check_output_path
    from ...runtime import parse_slices, select_device
    from .config import PETScanSpec
    from .simulate import simulate_pet

    if args.counts is not None and args.counts <= 0:
        raise ArgumentError(f"--counts: expected a number of prompts per slice > 0, got {args.counts:g}")
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
    headers = []
    if Path(args.input).is_dir() or Path(args.input).suffix.lower() == ".dcm":  # a PET series: its headers travel
        from ...datasets.pet_dicom import read_pet

        source_headers = read_pet(args.input, "as-stored").headers
        headers = [source_headers[i] for i in images.slices] if len(source_headers) > max(images.slices) else []
    try:
        simulate_pet(images, spec, args.out, device=device, source_headers=headers)
    except ValueError as err:  # an empty slice
        raise InputFileError(args.input, "activity", "activity in every simulated slice", str(err)) from None
    n = images.activity.shape[0]
    print(f"wrote {args.out} ({n} slices, {spec.views} views, {spec.counts:g} prompts per slice, background {spec.background_fraction:g})")
    return 0


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="PET sinogram .h5 written by 'simulate pet', or a folder of them")
    add_out_format(p)
    p.add_argument("--method", default=None, choices=PET_METHODS, help="default osem")
    p.add_argument(
        "--iters",
        type=int,
        default=None,
        help="passes over the data (default " + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items()) + ")",
    )
    p.add_argument("--subsets", type=int, default=None, help="ordered subsets of views (default 8)")
    p.add_argument(
        "--fwhm", type=float, action=FiniteFloat, default=None, help="OSEM post-filter FWHM in mm (default: best for the counts)"
    )
    p.add_argument(
        "--beta",
        type=float,
        action=FiniteFloat,
        default=None,
        help="MAP-EM RDP weight, relative to the mean sensitivity (default: best for the counts)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output .nii / .nii.gz, or a folder (PET DICOM series), in the source's unit; diffusion with --samples > 1 adds NAME_std",
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
    return run_inputs(args, _reconstruct_one, image_spec(args, (".h5",), series=False))


def _reconstruct_one(args: argparse.Namespace) -> int:
    from ...atomic import check_not_an_input
    from ...datasets.sinogram_io import read_sinogram, source_path
    from ...runtime import select_device
    from ..outputs import check_volume_output
    from .simulate import calibration

    method = args.method or ("diffusion" if args.prior is not None else "osem")
    diffusion_only = ("prior", "guide", "steps", "samples", "start")
    if method != "diffusion" and any(getattr(args, k) is not None for k in diffusion_only):
        raise ArgumentError(
            f"--prior / --guide / --steps / --samples / --start: expected --method diffusion (diffusion settings), got --method {method}"
        )
    if method == "diffusion" and any(getattr(args, k) is not None for k in ("iters", "subsets", "fwhm", "beta")):
        raise ArgumentError(
            "--iters / --subsets / --fwhm / --beta: expected none with --method diffusion (use --steps / --set dc_iters=N), got classical settings"
        )
    out, as_dicom = check_volume_output(args.out, [("the sinogram", args.input)])
    device = select_device(args.device)
    sf = read_sinogram(args.input, modality="PET", arrays=("multiplicative", "background"))
    if float(sf.sino.min()) < 0:
        raise InputFileError(sf.path, "sinogram", "prompt counts >= 0", f"minimum {float(sf.sino.min()):g}")
    calibration(sf)  # refused before any work when it is not one factor per slice
    unit = str(sf.attrs.get("unit", "counts"))
    if as_dicom and unit not in ("BQML", "SUVbw"):
        raise InputFileError(sf.path, "unit", "activity in BQML or SUVbw for a PET DICOM series (or write NIfTI)", repr(unit))
    source = source_path(sf)
    check_not_an_input(out, [("the sinogram's source", source)])
    std = None
    if method == "diffusion":
        activity, std, label = _diffusion(args, sf, device)
    else:
        activity, label = _classical(args, sf, method, device)
    _write(sf.affine, sf.slices, str(source or ""), sf.source_headers, activity, std, out, as_dicom, unit, f"medrecon {label}")
    return 0


def _classical(args: argparse.Namespace, sf, method: str, device: str):
    """OSEM + Gaussian or MAP-EM (RDP): activity ``(S, H, W)`` in the source's unit, and a label."""
    import torch

    from ...physics.pet import EmissionOperator
    from .config import PETReconConfig, recommended_classical
    from .em import gaussian_postfilter, map_em_rdp, osem
    from .simulate import calibration

    flags = {"method": method, "iterations": args.iters, "subsets": args.subsets, "fwhm_mm": args.fwhm, "beta": args.beta}
    prompts = float(sf.sino.sum()) / sf.sino.shape[0]
    cfg = settings_from(PETReconConfig, args, "recon", flags, recommended_classical(prompts), flag_names=RECON_OPTIONS)
    if cfg.subsets > sf.geometry.n_views:
        raise ArgumentError(f"--subsets: expected at most the sinogram's {sf.geometry.n_views} views, got {cfg.subsets}")
    op = EmissionOperator(sf.geometry, torch.from_numpy(sf.arrays["multiplicative"])).to(device)
    y, r = (torch.from_numpy(a).to(device) for a in (sf.sino, sf.arrays["background"]))
    iters = cfg.iterations or DEFAULT_ITERS[cfg.method]
    if cfg.method == "osem":
        x = gaussian_postfilter(osem(op, y, r, iters, cfg.subsets), cfg.fwhm_mm, sf.geometry.voxel_size_mm[0])
        label = f"OSEM {iters} it x {cfg.subsets} subsets, {cfg.fwhm_mm:g} mm FWHM"
    else:
        x = map_em_rdp(op, y, r, cfg.beta, cfg.gamma, iters, cfg.subsets)
        label = f"MAP-EM (RDP beta {cfg.beta:g}, BSREM {iters} it x {cfg.subsets} subsets)"
    return x.cpu().numpy() * calibration(sf)[:, None, None], label


def _diffusion(args: argparse.Namespace, sf, device: str):
    """Posterior mean and std (``--samples`` > 1, else None) in the source's unit, and a label."""
    from ...diffusion.prior_folder import load_prior
    from ...runtime import resolve_prior
    from .config import PETDiffusionConfig
    from .diffusion import reconstruct_sinogram_diffusion

    if args.prior is None:
        raise ArgumentError("--prior: expected a PET prior folder with --method diffusion, got nothing")
    flags = {k: getattr(args, k) for k in ("guide", "steps", "samples", "start", "seed")}
    cfg = settings_from(PETDiffusionConfig, args, "diffusion", flags)
    denoiser = load_prior(resolve_prior(args.prior), device=device)
    activity, std = reconstruct_sinogram_diffusion(sf, denoiser, cfg, device=device)
    label = f"diffusion ({cfg.samples} x {cfg.steps} steps from OSEM at {cfg.start:g}, guide {cfg.guide})"
    return activity, (std if cfg.samples > 1 else None), label


def _write(
    affine, slices: list[int], source: str, headers: list, activity, std, out: Path, as_dicom: bool, unit: str, description: str
) -> None:
    """Mean (and std) as a derived PET DICOM series in the source's study, or as NIfTI.

    The reference is ``headers`` (the source slices' headers a sinogram carries) when given, else the
    DICOM series ``source`` (its ``slices``) when it is one: the input of ``denoise``, or the source
    of an older sinogram found by its relative path.
    """
    from ...datasets.image_io import write_nifti
    from ...datasets.pet_dicom import PETVolume, read_pet, reference_from_headers, write_pet_dicom_series, write_pet_nifti
    from ..outputs import write_mean_and_std

    reference = reference_from_headers(headers, affine, Path(source).name) if headers else None
    src = Path(source)
    if as_dicom and reference is None and source and src.is_dir():
        try:
            full = read_pet(src, "as-stored")
            headers = [full.headers[i] for i in slices]
            reference = PETVolume(full.values[slices], affine, full.unit, full.suv_factor, str(src), headers)
        except InputFileError:
            reference = None  # source moved or changed: write without references

    def write(vol, path: Path, what: str) -> None:
        if as_dicom:
            write_pet_dicom_series(vol, affine, path, reference=reference, unit=unit, description=description + what)
        elif unit in ("BQML", "SUVbw"):
            write_pet_nifti(vol, affine, path, unit=unit)
        else:
            write_nifti(vol, path, affine=affine, description=f"medrecon PET unit={unit}")

    spath = write_mean_and_std(activity, std, out, as_dicom, write, source or out)
    if spath is not None:
        print(f"wrote {spath} (per-pixel std over the samples, {unit})")
    print(f"wrote {out} {activity.shape} in {unit} ({description})")


def _add_denoise(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="low-count PET image: DICOM series folder / file or NIfTI, or a folder of them")
    add_out_format(p)
    p.add_argument("--prior", required=True, help="PET diffusion prior folder")
    p.add_argument("--guide", default=None, help="the co-registered CT (DICOM series or NIfTI, HU), resampled onto the PET grid")
    p.add_argument("--unit", default="as-stored", choices=("as-stored", "BQML", "SUVbw"), help="activity unit (DICOM: converted)")
    p.add_argument("--slices", default=None, help="contiguous slice range, e.g. '10-20'")
    p.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    p.add_argument("--samples", type=int, default=None, help="posterior samples (> 1 also writes the std)")
    p.add_argument("--start", type=float, action=FiniteFloat, default=None, help="noise level the low-count image is diffused to")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output .nii / .nii.gz, or a folder (PET DICOM series)")
    add_common_options(p, "denoise")


def _denoise(args: argparse.Namespace) -> int:
    return run_inputs(args, _denoise_one, image_spec(args, (".nii", ".nii.gz"), paired=("--guide",)))


def _denoise_one(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ...datasets.pet_dicom import read_pet
    from ...datasets.pet_images import read_pet_with_ct
    from ...diffusion.prior_folder import load_prior
    from ...runtime import parse_slices, resolve_prior, select_device
    from ..outputs import check_volume_output
    from .config import PETDenoiseConfig
    from .diffusion import check_prior_for_pet, denoise_slices

    cfg = settings_from(PETDenoiseConfig, args, "denoise", {k: getattr(args, k) for k in ("steps", "samples", "start", "seed")})
    if args.guide is None and cfg.guide == "ct":
        cfg = cfg.model_copy(update={"guide": "none"})
    out, as_dicom = check_volume_output(args.out, [("the input", args.input), ("--guide", args.guide)])
    device = select_device(args.device)
    denoiser = load_prior(resolve_prior(args.prior), device=device)
    slices = parse_slices(args.slices)
    if args.guide is not None:
        images = read_pet_with_ct(args.input, args.guide, slices, args.unit)
        values, affine, unit, idx, guide = images.activity, images.affine, images.unit, images.slices, images.guide_hu
    else:
        vol = read_pet(args.input, args.unit)
        idx = list(range(vol.values.shape[0])) if slices is None else slices
        if any(not 0 <= i < vol.values.shape[0] for i in idx):
            raise ArgumentError(f"--slices: expected indices in 0..{vol.values.shape[0] - 1}, got {args.slices}")
        values, affine, unit, guide = vol.values[idx], vol.affine.copy(), vol.unit, None
        affine[:3, 3] += affine[:3, 2] * idx[0]
    pixel = float(np.linalg.norm(affine[:3, 0]))
    check_prior_for_pet(denoiser, pixel, cfg, guide is not None, args.input)
    if float(values.reshape(len(values), -1).mean(axis=1).min()) <= 0:
        raise InputFileError(args.input, "image", "activity in every slice", "a slice without activity")
    g = torch.Generator().manual_seed(cfg.seed)
    means, stds = [], []
    for a in range(0, len(values), 8):  # batches of 8 slices
        x = torch.from_numpy(values[a : a + 8]).to(device)
        gd = None if guide is None else torch.from_numpy(guide[a : a + 8]).to(device)
        m, s = denoise_slices(x, gd, denoiser, cfg, g)
        means.append(m.cpu().numpy())
        stds.append(s.cpu().numpy())
    std = np.concatenate(stds) if cfg.samples > 1 else None
    label = f"medrecon diffusion denoising ({cfg.samples} x {cfg.steps} steps from {cfg.start:g}, guide {cfg.guide})"
    _write(affine, idx, args.input, [], np.concatenate(means), std, out, as_dicom, unit, label)
    return 0


register(TaskCommand("simulate", "pet", "simulate a 2-D PET emission scan from activity images and their CT", _add_simulate, _simulate))
register(TaskCommand("denoise", "pet", "denoise low-count PET images with a (CT-guided) diffusion prior", _add_denoise, _denoise))
register(
    TaskCommand("reconstruct", "pet", "PET from a sinogram file written by 'simulate pet' (OSEM, MAP-EM)", _add_reconstruct, _reconstruct)
)
