"""``medrecon simulate ct`` and ``medrecon reconstruct ct``: options, settings, files in and out."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import InputFileError
from ..options import add_common_options, settings_from
from ..registry import TaskCommand, register
from . import pairs  # noqa: F401  (registers the pair simulator ct_limited_angle_fbp)
from .config import CT_METHODS, DEFAULT_ITERS, FILTERS


def _add_simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="DICOM series folder, DICOM file or NIfTI in HU")
    p.add_argument("--geometry", default=None, choices=("parallel", "fan"), help="default parallel")
    p.add_argument("--arc", type=float, default=None, help="angular range in degrees (default: 180 parallel, 360 fan)")
    p.add_argument("--views", type=int, default=None, help="number of projections (default 180)")
    p.add_argument("--dose", type=float, default=None, help="incident photons per detector bin (default 1e5; <= 0: noiseless)")
    p.add_argument("--electronic-noise", type=float, default=None, help="Gaussian electronic noise, counts (default 0)")
    p.add_argument("--slices", default=None, help="contiguous slice range, e.g. '5-9'")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output sinogram .h5")
    add_common_options(p, "scan")


def _simulate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...atomic import check_output_path
    from ...datasets.ct_volume import read_ct
    from ...runtime import parse_slices, select_device
    from .config import CTScanSpec
    from .simulate import simulate_ct

    noiseless = args.dose is not None and args.dose <= 0
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
    )
    if noiseless:
        spec = spec.model_copy(update={"dose": None})
    check_output_path(args.out)
    slices = parse_slices(args.slices)
    device = select_device(args.device)
    vol = read_ct(args.input)
    n = vol.hu.shape[0] if slices is None else len(slices)
    with tqdm(total=n, desc=f"simulate {spec.beam}", unit="slice", disable=args.quiet) as bar:
        simulate_ct(vol, spec, args.out, slices, device=device, progress=lambda d, t: bar.update(1))
    print(f"wrote {args.out} ({n} slices, {spec.beam}, {spec.views} views over {spec.arc_deg or 'full'} deg, dose {spec.dose})")
    return 0


def _add_reconstruct(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="sinogram .h5 written by 'simulate ct'")
    p.add_argument("--method", default=None, choices=CT_METHODS, help="default fbp")
    p.add_argument("--filter", default=None, choices=FILTERS, help="FBP filter (default ram-lak)")
    p.add_argument(
        "--iters", type=int, default=None, help="iterations (default " + ", ".join(f"{k} {v}" for k, v in DEFAULT_ITERS.items()) + ")"
    )
    p.add_argument("--lam", type=float, default=None, help="TV weight in 1/mm (default 0.3, docs/results/ct.md)")
    p.add_argument("--out", required=True, help="output .nii / .nii.gz, or a folder (DICOM series)")
    add_common_options(p, "recon")


def _reconstruct(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ...atomic import check_output_path
    from ...datasets.ct_volume import CTVolume, read_ct, write_ct_nifti, write_dicom_series
    from ...datasets.sinogram_io import read_sinogram
    from ...runtime import select_device
    from .config import CTReconConfig
    from .volume import reconstruct_sinogram

    config = settings_from(
        CTReconConfig, args, "recon", {"method": args.method, "filter": args.filter, "iters": args.iters, "lam": args.lam}
    )
    out = Path(args.out)
    as_dicom = str(args.out).endswith(("/", "\\")) or out.is_dir() or out.suffix == ""
    if as_dicom:
        if out.exists() and any(out.iterdir()):
            raise InputFileError(out, "output folder", "a new or empty folder for the DICOM series", "an existing non-empty folder")
        check_output_path(out.parent / "probe")
    elif not out.name.lower().endswith((".nii", ".nii.gz")):
        raise InputFileError(out, "output", "a .nii / .nii.gz file or a folder (DICOM series)", repr(out.name))
    else:
        check_output_path(out)
    device = select_device(args.device)
    sf = read_sinogram(args.input)
    with tqdm(total=sf.sino.shape[0], desc=f"{config.method} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
        hu = reconstruct_sinogram(sf, config, device=device, progress=lambda d, t: bar.update(d - bar.n))
    vol = CTVolume(hu, sf.affine, str(args.input))
    if as_dicom:
        reference = None
        src = Path(str(sf.attrs.get("source", "")))
        if src.is_dir():
            try:
                full = read_ct(src)
                reference = CTVolume(full.hu[sf.slices], sf.affine, str(src), [full.headers[i] for i in sf.slices])
            except InputFileError:
                reference = None  # source moved or changed: write without references
        write_dicom_series(hu, sf.affine, out, reference=reference, description=f"medrecon {config.method}")
    else:
        write_ct_nifti(vol, out)
    print(f"wrote {out} {tuple(hu.shape)} HU")
    return 0


register(
    TaskCommand("simulate", "ct", "project a CT volume (DICOM series / file / NIfTI in HU) into a sinogram file", _add_simulate, _simulate)
)
register(TaskCommand("reconstruct", "ct", "CT from a sinogram file written by 'simulate ct'", _add_reconstruct, _reconstruct))
