"""The ``medrecon`` command line: simulate, reconstruct, evaluate, demo.

Every user error (bad file, bad argument) ends as one line on stderr naming the file or argument,
what was expected and what was received, exit status 2, and no output file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..errors import InputFileError


def parse_slices(text: str | None) -> list[int] | None:
    """``"0-3,7"`` → ``[0, 1, 2, 3, 7]``; ``None`` → ``None`` (all slices)."""
    if text is None:
        return None
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
    except ValueError:
        raise ValueError(f"--slices: expected a list like '0-3,7', got {text!r}") from None
    return out


def _device(name: str) -> str:
    import torch

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device: expected an available device, got {name!r} but no CUDA GPU is visible to torch")
    if name.startswith("cuda"):
        # TF32 for matmuls and convolutions: with it off, cuDNN was measured picking a U-Net
        # algorithm 80x slower (and 132 GiB peak) on an H200
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return name


def _cmd_simulate_mri(args: argparse.Namespace) -> int:
    from ..datasets.open_kspace import open_kspace
    from ..tasks.mri.simulate import MaskSpec, simulate_undersampling

    spec = MaskSpec(kind=args.mask, acceleration=args.accel, center_fraction=args.center_fraction, calib=args.calib, seed=args.seed)
    src = open_kspace(args.input)
    out = simulate_undersampling(src, spec, args.out)
    print(f"wrote {out} ({src.num_slices} slices, {spec.kind} {spec.acceleration:g}x, seed {spec.seed})")
    return 0


def _resolve_prior(name: str) -> Path:
    """``brain`` → the prior shipped in the package; anything else is a folder path."""
    from ..priors import SHIPPED_PRIORS, shipped_prior_dir

    if name in SHIPPED_PRIORS:
        shipped = shipped_prior_dir(name)
        if not (shipped / "prior.safetensors").is_file():
            raise InputFileError(shipped, "prior", "the shipped brain prior", "not in this version of medrecon (train one with 'medrecon train')")
        return shipped
    return Path(name)


def _cmd_reconstruct_mri_diffusion(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..atomic import check_output_path
    from ..datasets.image_io import write_recon_h5, write_volume
    from ..datasets.open_kspace import open_kspace
    from ..diffusion.training import load_prior
    from ..tasks.mri.diffusion import DiffusionConfig, demodulates, reconstruct_volume_diffusion

    if args.prior is None:
        raise ValueError("--prior: expected a prior folder or 'brain' with --method diffusion, got nothing")
    cfg = DiffusionConfig(sampler=args.sampler, steps=args.steps, eta=args.eta, dc=args.dc, cg_iters=args.cg_iters,
                          samples=args.samples, seed=args.seed, start=args.start, init=args.init, dc_lam=args.dc_lam,
                          phase=args.phase)
    out = Path(args.out)
    check_output_path(out)
    name = out.name.lower()
    if not name.endswith((".nii", ".nii.gz", ".h5", ".hdf5")):
        raise InputFileError(out, "output file type", "a .nii, .nii.gz or .h5 name", repr(out.name))
    device = _device(args.device)
    denoiser = load_prior(_resolve_prior(args.prior), device=device)
    src = open_kspace(args.input, echo=args.echo)
    slices = parse_slices(args.slices)
    n = src.num_slices if slices is None else len(slices)
    with tqdm(total=n, desc=f"diffusion {cfg.sampler} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
        def prog(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        mean, std = reconstruct_volume_diffusion(src, denoiser, cfg, slices, device=device, progress=prog, batch_slices=args.batch_slices)
    attrs = {"method": f"diffusion-{cfg.sampler}", "prior": str(args.prior), "samples": cfg.samples, "steps": cfg.steps,
             "start": cfg.start, "init": cfg.init if cfg.start < 1 else "noise",
             "phase": "demodulated" if demodulates(denoiser, cfg) else "kept",
             "prior_training_steps": int(getattr(denoiser, "info", {}).get("training_steps", -1))}
    if name.endswith((".h5", ".hdf5")):
        write_recon_h5(mean, out, std=std if cfg.samples > 1 else None, attrs=attrs)
    else:
        base = out.name[:-7] if name.endswith(".nii.gz") else out.name[:-4]
        std_path = out.with_name(base + "_std" + out.name[len(base):])
        if cfg.samples > 1:
            write_volume(std, std_path, src.geometry.voxel_size_mm)
        try:
            write_volume(mean, out, src.geometry.voxel_size_mm)
        except BaseException:
            std_path.unlink(missing_ok=True)  # no half of a result
            raise
        if cfg.samples > 1:
            print(f"wrote {std_path} (per-voxel std over {cfg.samples} samples)")
    print(f"wrote {out} {tuple(mean.shape)}")
    return 0


def _cmd_reconstruct_mri(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.method == "diffusion":
        return _cmd_reconstruct_mri_diffusion(args)

    from ..atomic import check_output_path
    from ..datasets.image_io import write_volume
    from ..datasets.open_kspace import open_kspace
    from ..tasks.mri.volume import ClassicalConfig, reconstruct_volume

    if args.config is not None:
        from ..config import load_config

        config = load_config(args.config, ClassicalConfig, section="recon")
    else:
        config = ClassicalConfig(method=args.method, lam=args.lam, max_iter=args.iters)
    check_output_path(args.out)
    if not str(args.out).lower().endswith((".nii", ".nii.gz", ".h5", ".hdf5")):
        raise InputFileError(args.out, "output file type", "a .nii, .nii.gz or .h5 name", f"{Path(args.out).name!r}")
    device = _device(args.device)
    src = open_kspace(args.input, echo=args.echo)
    slices = parse_slices(args.slices)
    n = src.num_slices if slices is None else len(slices)
    with tqdm(total=n, desc=f"{config.method} {Path(args.input).name}", unit="slice", disable=args.quiet) as bar:
        vol = reconstruct_volume(src, config, slices, device=device, progress=lambda done, total: bar.update(1))
    attrs = {"method": config.method, "source": str(src.path), "slices": json.dumps(slices if slices is not None else list(range(n)))}
    write_volume(vol, args.out, src.geometry.voxel_size_mm, attrs)
    print(f"wrote {args.out} {tuple(vol.shape)}")
    return 0


def _cmd_simulate_ct(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..atomic import check_output_path
    from ..datasets.ct_volume import read_ct
    from ..tasks.ct.simulate import CTScanSpec, simulate_ct

    spec = CTScanSpec(beam=args.geometry, arc_deg=args.arc, views=args.views, dose=None if args.dose <= 0 else args.dose,
                      electronic_sigma=args.electronic_noise, seed=args.seed)
    check_output_path(args.out)
    device = _device(args.device)
    vol = read_ct(args.input)
    slices = parse_slices(args.slices)
    n = vol.hu.shape[0] if slices is None else len(slices)
    with tqdm(total=n, desc=f"simulate {spec.beam}", unit="slice", disable=args.quiet) as bar:
        simulate_ct(vol, spec, args.out, slices, device=device, progress=lambda d, t: bar.update(1))
    print(f"wrote {args.out} ({n} slices, {spec.beam}, {spec.views} views over {spec.arc_deg or 'full'} deg, dose {spec.dose})")
    return 0


def _cmd_reconstruct_ct(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..atomic import check_output_path
    from ..datasets.ct_volume import CTVolume, read_ct, write_ct_nifti, write_dicom_series
    from ..datasets.sinogram_io import read_sinogram
    from ..tasks.ct.volume import CTReconConfig, reconstruct_sinogram

    if args.config is not None:
        from ..config import load_config

        config = load_config(args.config, CTReconConfig, section="recon")
    else:
        config = CTReconConfig(method=args.method, filter=args.filter, iters=args.iters,
                               **({} if args.lam is None else {"lam": args.lam}))
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
    device = _device(args.device)
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


def _cmd_evaluate_ct(args: argparse.Namespace) -> int:
    from ..datasets.ct_volume import read_ct
    from ..evaluation.ct_metrics import DEFAULT_WINDOW, hu_metrics

    target = read_ct(args.target).hu
    recon = read_ct(args.recon).hu
    slices = parse_slices(args.slices)
    if slices is not None:
        target = target[slices]
    if recon.shape != target.shape:
        raise InputFileError(args.recon, "shape", f"{target.shape} like the target (or pass --slices)", f"{recon.shape}")
    return _report_metrics(hu_metrics(target, recon, tuple(args.window) if args.window else DEFAULT_WINDOW), args)


def _report_metrics(m: dict[str, float], args: argparse.Namespace) -> int:
    """Print a metrics table and, with ``--json``, write it atomically."""
    from ..atomic import atomic_output

    width = max(len(k) for k in m) + 2
    print(f"{'metric':<{width}}{'value':>12}")
    for k, v in m.items():
        print(f"{k:<{width}}{v:>12.4f}")
    if args.json:
        with atomic_output(args.json) as tmp:
            tmp.write_text(json.dumps({"target": str(args.target), "recon": str(args.recon), **m}, indent=2))
    return 0


def _is_ct_path(p: str) -> bool:
    path = Path(p)
    return path.is_dir() or path.suffix.lower() == ".dcm"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.window is not None or _is_ct_path(args.target) or _is_ct_path(args.recon):
        return _cmd_evaluate_ct(args)
    import numpy as np

    from ..datasets.image_io import read_volume
    from ..evaluation.metrics import volume_metrics

    target = read_volume(args.target)
    recon = read_volume(args.recon)
    slices = parse_slices(args.slices)
    if slices is not None:
        target = target[slices]
    if recon.shape[0] != target.shape[0]:
        raise InputFileError(args.recon, "slices", f"{target.shape[0]} slices like the target (or pass --slices)", f"{recon.shape[0]}")
    if recon.shape[1] < target.shape[1] or recon.shape[2] < target.shape[2]:
        raise InputFileError(args.recon, "image size", f"at least {target.shape[1:]} (the target's)", f"{recon.shape[1:]}")
    if not np.all(np.isfinite(recon)):
        raise InputFileError(args.recon, "values", "finite values", "NaN or Inf")
    return _report_metrics(volume_metrics(target, recon), args)


def _cmd_train(args: argparse.Namespace) -> int:
    import yaml
    from tqdm import tqdm

    from ..config import load_config
    from ..datasets.training_images import load_training_images, load_training_volumes
    from ..diffusion.training import TrainConfig, normalise_images, train_prior
    from ..diffusion.train_config import DataConfig, PriorArchConfig

    p = Path(args.config)
    try:
        top = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise InputFileError(p, "file", "a readable YAML file", f"unreadable ({err.__class__.__name__})") from None
    allowed = {"data", "prior", "train", "output"}
    if not isinstance(top, dict) or set(top) - allowed or not {"data", "train", "output"} <= set(top):
        raise InputFileError(p, "document", "sections data, train, output (and optional prior)", f"{sorted(top) if isinstance(top, dict) else type(top).__name__}")
    data = load_config(p, DataConfig, "data")
    arch = load_config(p, PriorArchConfig, "prior") if "prior" in top else PriorArchConfig()
    cfg = load_config(p, TrainConfig, "train")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise ValueError(f"--max-minutes: expected > 0, got {args.max_minutes}")
    out = Path(str(top["output"]) if args.output is None else args.output)
    import torch

    device = _device(args.device)
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():  # started by torchrun
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if arch.spatial_dims == 3:  # whole volumes; training cuts random 3-D patches
        images = normalise_images(torch.from_numpy(load_training_volumes(data.paths, data.synthetic_phase, data.seed)))
        what = f"{len(images)} volumes {tuple(images.shape[1:])}"
    else:
        images = normalise_images(torch.from_numpy(load_training_images(data.paths, data.synthetic_phase, data.min_fraction, data.seed, data.pad_to_common)))
        what = f"{len(images)} slices"
    desc = f"{what} from {', '.join(Path(x).name for x in data.paths)}" + (" (synthetic smooth phase)" if data.synthetic_phase else "")
    with tqdm(total=cfg.steps, desc=f"train {cfg.objective}", unit="step", disable=args.quiet or rank != 0) as bar:
        def prog(step, total, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.refresh()

        res = train_prior(images, cfg, out, arch.as_args(), data_description=desc, device=device, progress=prog, fp16_weights=arch.fp16_weights,
                          max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
                          init_from=None if args.init_from is None else _resolve_prior(args.init_from))
    if rank == 0:
        print(f"wrote {out}/prior.safetensors + prior.json ({res['steps']} steps, final loss {res['final_loss']:.4f}, {res['seconds']:.0f} s)")
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..tasks.mri.demo import run_demo

    if args.steps < 1 or args.samples < 1:
        raise ValueError(f"--steps / --samples: expected >= 1, got {args.steps} / {args.samples}")
    run_demo(args.out_dir, seed=args.seed, diffusion=not args.no_diffusion, steps=args.steps, samples=args.samples)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    from ..physics.mri.masks import MASK_KINDS_1D, MASK_KINDS_2D
    from ..tasks.mri.classical import METHODS

    p = argparse.ArgumentParser(prog="medrecon", description="Medical image reconstruction with physics and diffusion priors.")
    sub = p.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="retrospectively undersample fully sampled data")
    sim_sub = sim.add_subparsers(dest="modality", required=True)
    sm = sim_sub.add_parser("mri", help="write a fastMRI multi-coil file with undersampled k-space")
    sm.add_argument("--input", required=True, help="fully sampled fastMRI / SKM-TEA .h5 or .npz")
    sm.add_argument("--mask", default="equispaced_fraction", choices=MASK_KINDS_1D + MASK_KINDS_2D)
    sm.add_argument("--accel", type=float, default=4.0, help="acceleration (default 4)")
    sm.add_argument("--center-fraction", type=float, default=0.08, help="fully sampled centre fraction, 1-D masks")
    sm.add_argument("--calib", type=int, default=24, help="calibration square side, 2-D masks")
    sm.add_argument("--seed", type=int, default=0)
    sm.add_argument("--out", required=True, help="output .h5")
    sm.set_defaults(func=_cmd_simulate_mri)

    sc = sim_sub.add_parser("ct", help="project a CT volume (DICOM series / file / NIfTI in HU) into a sinogram file")
    sc.add_argument("--input", required=True, help="DICOM series folder, DICOM file or NIfTI in HU")
    sc.add_argument("--geometry", default="parallel", choices=("parallel", "fan"))
    sc.add_argument("--arc", type=float, default=None, help="angular range in degrees (default: 180 parallel, 360 fan)")
    sc.add_argument("--views", type=int, default=180, help="number of projections")
    sc.add_argument("--dose", type=float, default=1e5, help="incident photons per detector bin (<= 0: noiseless)")
    sc.add_argument("--electronic-noise", type=float, default=0.0, help="Gaussian electronic noise, counts")
    sc.add_argument("--slices", default=None, help="contiguous slice range, e.g. '5-9'")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--device", default="cpu")
    sc.add_argument("--quiet", action="store_true")
    sc.add_argument("--out", required=True, help="output sinogram .h5")
    sc.set_defaults(func=_cmd_simulate_ct)

    rec = sub.add_parser("reconstruct", help="reconstruct raw data")
    rec_sub = rec.add_subparsers(dest="modality", required=True)
    rm = rec_sub.add_parser("mri", help="multi-coil MRI from fastMRI / SKM-TEA .h5 or .npz")
    rm.add_argument("input")
    rm.add_argument("--method", default="cs", choices=METHODS + ("diffusion",))
    rm.add_argument("--prior", default=None, help="diffusion: prior folder (prior.safetensors + prior.json) or 'brain'")
    rm.add_argument("--sampler", default="dds", choices=("dds", "ddim", "ddpm", "ve_pc"), help="diffusion sampler")
    rm.add_argument("--steps", type=int, default=50, help="diffusion: network evaluations per sample")
    rm.add_argument("--eta", type=float, default=0.85, help="diffusion: DDIM eta")
    rm.add_argument("--dc", default="cg", choices=("cg", "grad", "hard", "none"), help="diffusion: data consistency")
    rm.add_argument("--cg-iters", type=int, default=5, help="diffusion: CG iterations per step")
    rm.add_argument("--dc-lam", type=float, default=0.0, help="diffusion: proximal weight of the CG step (0: DDS)")
    rm.add_argument("--start", type=float, default=1.0,
                    help="diffusion: fraction of the noise schedule to start from; < 1 warm-starts from --init (fewer steps)")
    rm.add_argument("--init", default="sense", choices=("sense", "cs"), help="diffusion: warm-start estimate (with --start < 1)")
    rm.add_argument("--phase", default="auto", choices=("auto", "demodulate", "keep"),
                    help="diffusion: remove the image's smooth phase before sampling (auto: when the prior was trained on nearly real images)")
    rm.add_argument("--samples", type=int, default=1, help="diffusion: posterior samples (>1 also writes the std)")
    rm.add_argument("--batch-slices", type=int, default=1, help="diffusion: slices sampled together in one batch (raise on a GPU)")
    rm.add_argument("--seed", type=int, default=0)
    rm.add_argument("--config", default=None, help="YAML with a 'recon' section (see configs/); overrides --method/--lam/--iters")
    rm.add_argument("--lam", type=float, default=None, help="regularisation weight (relative; default 1e-3)")
    rm.add_argument("--iters", type=int, default=None, help="solver iterations")
    rm.add_argument("--slices", default=None, help="e.g. '0-3,7' (default: all)")
    rm.add_argument("--echo", type=int, default=0, help="SKM-TEA echo")
    rm.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    rm.add_argument("--quiet", action="store_true", help="no progress bar")
    rm.add_argument("--out", required=True, help="output .nii, .nii.gz or .h5")
    rm.set_defaults(func=_cmd_reconstruct_mri)

    from ..tasks.ct.fbp import FILTERS
    from ..tasks.ct.volume import CT_METHODS

    rc = rec_sub.add_parser("ct", help="CT from a sinogram file written by 'simulate ct'")
    rc.add_argument("input")
    rc.add_argument("--method", default="fbp", choices=CT_METHODS)
    rc.add_argument("--filter", default="ram-lak", choices=FILTERS)
    rc.add_argument("--iters", type=int, default=None)
    rc.add_argument("--lam", type=float, default=None, help="TV weight (1/mm); default 0.3 (tuned on real CT, README 'CT baselines')")
    rc.add_argument("--config", default=None, help="YAML with a 'recon' section (see configs/ct_tv.yaml)")
    rc.add_argument("--device", default="cpu")
    rc.add_argument("--quiet", action="store_true")
    rc.add_argument("--out", required=True, help="output .nii / .nii.gz, or a folder (DICOM series)")
    rc.set_defaults(func=_cmd_reconstruct_ct)

    ev = sub.add_parser("evaluate", help="NMSE / PSNR / SSIM of a reconstruction against a target (fastMRI conventions)")
    ev.add_argument("--target", required=True, help="fully sampled raw file or reference volume")
    ev.add_argument("--recon", required=True, help="reconstruction (.nii[.gz] or .h5)")
    ev.add_argument("--slices", default=None, help="target slices the reconstruction covers")
    ev.add_argument("--json", default=None, help="also write the metrics as JSON")
    ev.add_argument("--window", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="CT: HU window for the metrics (default -1000 1000); implied for DICOM targets")
    ev.set_defaults(func=_cmd_evaluate)

    tr = sub.add_parser("train", help="train a diffusion prior from a YAML config (see configs/)")
    tr.add_argument("--config", required=True)
    tr.add_argument("--output", default=None, help="override the config's output folder")
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--init-from", default=None,
                    help="warm-start from a prior folder (its weights and step count; fresh optimiser) when the output has no checkpoint")
    tr.add_argument("--max-minutes", type=float, default=None,
                    help="stop after this much training time with a checkpoint and the prior so far (resume later up to train.steps)")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_cmd_train)

    de = sub.add_parser("demo", help="reconstruct the embedded real MR slices at 4x and 8x (classical and with the shipped brain prior)")
    de.add_argument("--out-dir", default="demo_output")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--no-diffusion", action="store_true", help="skip the diffusion part (brain slice, shipped prior)")
    de.add_argument("--steps", type=int, default=20, help="diffusion: network evaluations per sample")
    de.add_argument("--samples", type=int, default=2, help="diffusion: posterior samples (mean and std map)")
    de.set_defaults(func=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medrecon`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (InputFileError, ValueError, TypeError, FileNotFoundError) as err:
        print(f"medrecon: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
