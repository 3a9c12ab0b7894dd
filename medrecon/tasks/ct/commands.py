"""``medrecon simulate ct`` and ``medrecon reconstruct ct``: options, settings, files in and out."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import InputFileError
from ..folder_run import FolderSpec, add_out_format, h5_name, image_spec, run_inputs
from ..options import FiniteFloat, add_common_options, settings_from
from ..outputs import check_volume_output, std_path, write_mean_and_std
from ..registry import TaskCommand, register
from . import pairs  # noqa: F401  (registers the pair simulator ct_limited_angle_fbp)
from .config import CT_METHODS, DEFAULT_ITERS, FILTERS

# settings fields whose option has another name (named in errors)
SCAN_OPTIONS = {"beam": "--geometry", "arc_deg": "--arc", "electronic_sigma": "--electronic-noise"}
RECON_OPTIONS = {"tv_lam": "--lam"}


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input", required=True, help="DICOM series folder, DICOM file or NIfTI in HU, or a folder of NIfTI volumes / series folders"
    )
    p.add_argument("--geometry", default=None, choices=("parallel", "fan"), help="default parallel")
    p.add_argument("--arc", type=float, action=FiniteFloat, default=None, help="angular range in degrees (default: 180 parallel, 360 fan)")
    p.add_argument("--views", type=int, default=None, help="number of projections (default 180)")
    p.add_argument(
        "--dose", type=float, action=FiniteFloat, default=None, help="incident photons per detector bin, > 0 (default 1e5; 0: noiseless)"
    )
    p.add_argument("--electronic-noise", type=float, action=FiniteFloat, default=None, help="Gaussian electronic noise, counts (default 0)")
    p.add_argument("--slices", default=None, help="contiguous slice range, e.g. '5-9'")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output sinogram .h5 (a folder for a folder: NAME.h5 per input)")
    add_common_options(p, "scan")


def _simulate(args: argparse.Namespace) -> int:
    return run_inputs(args, _simulate_one, FolderSpec((".nii", ".nii.gz"), h5_name, series=True), input_label="--input")


def _simulate_one(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...atomic import check_not_an_input, check_output_path
    from ...datasets.ct_volume import read_ct
    from ...errors import ArgumentError
    from ...runtime import parse_slices, select_device
    from .config import CTScanSpec
    from .simulate import simulate_ct

    if args.dose is not None and args.dose < 0:
        raise ArgumentError(f"--dose: expected photons per detector bin > 0, or 0 for a noiseless sinogram, got {args.dose:g}")
    noiseless = args.dose == 0
    spec = settings_from(
        CTScanSpec,
        args,
        "scan",
        {
            "beam": args.geometry,
            "arc_deg": args.arc,
            "views": args.views,
            "dose": None if noiseless else args.dose,
            "electronic_sigma": args.electronic_noise,
            "seed": args.seed,
        },
        flag_names=SCAN_OPTIONS,
    )
    if noiseless:
        spec = spec.model_copy(update={"dose": None})
    check_output_path(args.out)
    slices = parse_slices(args.slices)
    device = select_device(args.device)
    check_not_an_input(args.out, [("--input", args.input)])
    vol = read_ct(args.input)
    n = vol.hu.shape[0] if slices is None else len(slices)
    with tqdm(total=n, desc=f"simulate {spec.beam}", unit="slice", disable=args.quiet) as bar:
        simulate_ct(vol, spec, args.out, slices, device=device, progress=lambda d, t: bar.update(1))
    print(f"wrote {args.out} ({n} slices, {spec.beam}, {spec.views} views over {spec.arc_deg or 'full'} deg, dose {spec.dose})")
    return 0


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="sinogram .h5 written by 'simulate ct', or a folder of them")
    add_out_format(p)
    p.add_argument("--method", default=None, choices=CT_METHODS, help="default: diffusion when --prior is given, else fbp")
    p.add_argument("--filter", default=None, choices=FILTERS, help="FBP filter (default ram-lak)")
    p.add_argument(
        "--iters", type=int, default=None, help="iterations (default " + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items()) + ")"
    )
    p.add_argument("--lam", type=float, action=FiniteFloat, default=None, help="TV weight in 1/mm (default 0.3, docs/results/ct.md)")
    p.add_argument(
        "--out", required=True, help="output .nii / .nii.gz, or a folder (DICOM series); diffusion with --samples > 1 adds a std"
    )
    g = p.add_argument_group("diffusion (defaults: the prior's recommendation for the scan's arc, else CTDiffusionConfig)")
    g.add_argument("--prior", default=None, help="diffusion prior: a folder (prior.safetensors + prior.json) or 'ct' (shipped)")
    g.add_argument("--steps", type=int, default=None, help="network evaluations per sample")
    g.add_argument("--samples", type=int, default=None, help="posterior samples (> 1 also writes the std)")
    g.add_argument(
        "--start",
        type=float,
        action=FiniteFloat,
        default=None,
        help="fraction of the noise schedule to start from (< 1: warm start from --init)",
    )
    g.add_argument("--init", default=None, choices=("fbp", "sirt", "tv"), help="warm-start estimate")
    g.add_argument("--seed", type=int, default=None)
    add_common_options(p, "recon")


def _reconstruct(args: argparse.Namespace) -> int:
    return run_inputs(args, _reconstruct_one, image_spec(args, (".h5",), series=False))


def _reconstruct_one(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...datasets.sinogram_io import read_sinogram
    from ...errors import ArgumentError
    from ...runtime import select_device
    from .config import CTDiffusionConfig, CTReconConfig, recommended_settings

    method = args.method or ("diffusion" if args.prior is not None else None)
    if method != "diffusion" and args.prior is not None:
        raise ArgumentError(f"--prior: expected --method diffusion (the only method that uses a prior), got --method {method}")
    out, as_dicom = check_volume_output(args.out, [("the sinogram", args.input)])
    device = select_device(args.device)
    sf = read_sinogram(args.input)
    _check_not_an_input(out, as_dicom, args.input, sf, with_std=method == "diffusion")
    std = None
    if method == "diffusion":
        from ...diffusion.prior_folder import load_prior
        from ...runtime import resolve_prior
        from .diffusion import reconstruct_sinogram_diffusion

        if args.prior is None:
            raise ArgumentError("--prior: expected a prior folder or 'ct' with --method diffusion, got nothing")
        if args.iters is not None or args.filter is not None:
            raise ArgumentError(
                "--iters / --filter: expected none with --method diffusion (use --steps / --set dc_iters=N), got classical settings"
            )
        denoiser = load_prior(resolve_prior(args.prior), device=device)
        flags = {k: getattr(args, k) for k in ("steps", "samples", "start", "init", "seed")}
        flags["tv_lam"] = args.lam
        recommended = recommended_settings(denoiser.info, sf.geometry.arc_deg)
        cfg = settings_from(CTDiffusionConfig, args, "diffusion", flags, recommended, flag_names=RECON_OPTIONS)
        label = f"diffusion ({cfg.samples} x {cfg.steps} steps from {'noise' if cfg.start >= 1 else f'{cfg.init} at {cfg.start:g}'})"
        with tqdm(total=sf.sino.shape[0], desc=f"diffusion {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
            hu, std = reconstruct_sinogram_diffusion(sf, denoiser, cfg, device=device, progress=lambda d, t: bar.update(d - bar.n))
        std = std if cfg.samples > 1 else None
    else:
        from .volume import reconstruct_sinogram

        config = settings_from(
            CTReconConfig, args, "recon", {"method": method, "filter": args.filter, "iters": args.iters, "lam": args.lam}
        )
        label = config.method
        with tqdm(total=sf.sino.shape[0], desc=f"{config.method} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
            hu = reconstruct_sinogram(sf, config, device=device, progress=lambda d, t: bar.update(d - bar.n))
    _write(sf, hu, out, as_dicom, f"medrecon {label}", std)
    return 0


def _check_not_an_input(out: Path, as_dicom: bool, sinogram: str, sf, with_std: bool) -> None:
    """Refuse outputs (the mean, and the std ``with_std``) that are, or lie inside, the sinogram or the volume it was simulated from."""
    from ...atomic import check_not_an_input
    from ...datasets.sinogram_io import source_path

    inputs = [("the sinogram", sinogram), ("the sinogram's source", source_path(sf))]
    for path in (out, std_path(out, as_dicom)) if with_std else (out,):
        check_not_an_input(path, inputs)


def _write(sf, hu, out: Path, as_dicom: bool, description: str, std=None) -> None:
    """Mean (and std) as a derived DICOM series in the source's study (the headers the sinogram carries), or as NIfTI."""
    from ...datasets.ct_volume import CTVolume, read_ct, write_ct_nifti, write_dicom_series
    from ...datasets.sinogram_io import source_path

    headers = sf.source_headers
    source = source_path(sf)
    if as_dicom and not headers and source is not None and source.is_dir():  # a sinogram of an earlier version
        try:
            full = read_ct(source)
            headers = [full.headers[i] for i in sf.slices]
        except (InputFileError, IndexError):
            headers = []
    if as_dicom and not headers:
        print(f"note: {sf.path.name} carries no DICOM source headers: the series gets a new study and no patient identifiers")

    def write(vol, path: Path, what: str) -> None:
        if as_dicom:
            write_dicom_series(vol, sf.affine, path, headers, description=description + what)
        else:
            write_ct_nifti(CTVolume(vol, sf.affine, str(sf.path)), path)

    spath = write_mean_and_std(hu, std, out, as_dicom, write, sf.path)
    if spath is not None:
        print(f"wrote {spath} (per-pixel std in HU over the samples)")
    print(f"wrote {out} {tuple(hu.shape)} HU ({description})")


register(
    TaskCommand("simulate", "ct", "project a CT volume (DICOM series / file / NIfTI in HU) into a sinogram file", _add_simulate, _simulate)
)
register(TaskCommand("reconstruct", "ct", "CT from a sinogram file written by 'simulate ct'", _add_reconstruct, _reconstruct))
