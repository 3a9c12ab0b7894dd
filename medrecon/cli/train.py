"""``medrecon train --config FILE.yaml``: train (or resume) a diffusion prior, unconditional or conditional.

Sections: ``data`` (files; ``data.condition`` for a conditional prior: paired files or a task's
simulator), ``prior`` (network size, optional), ``train`` (optimiser) and ``output`` (folder).
Under ``torchrun`` it trains data-parallel (NCCL on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import ArgumentError, InputFileError
from ..tasks.options import FiniteFloat

SECTIONS = {"data", "prior", "train", "output"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser("train", help="train a diffusion prior from a YAML config (see configs/)")
    tr.add_argument("--config", required=True, metavar="FILE.yaml")
    tr.add_argument(
        "--set", action="append", default=None, metavar="SECTION.KEY=VALUE", help="override one setting, e.g. train.steps=2000 (repeatable)"
    )
    tr.add_argument("--output", default=None, help="override the config's output folder")
    tr.add_argument("--device", default="cpu")
    tr.add_argument(
        "--init-from",
        default=None,
        help="warm-start from a prior folder (its weights and step count; fresh optimiser) when the output has no checkpoint",
    )
    tr.add_argument(
        "--max-minutes",
        type=float,
        action=FiniteFloat,
        default=None,
        help="stop after this much training time with a checkpoint and the prior so far (resume later up to train.steps)",
    )
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=run)


def _sections(args: argparse.Namespace) -> tuple[dict, dict, dict, str]:
    from ..config import parse_set_options, read_yaml

    top = read_yaml(args.config)
    if set(top) - SECTIONS or not {"data", "train", "output"} <= set(top):
        raise InputFileError(args.config, "document", "sections data, train, output (and optional prior)", f"{sorted(top)}")
    for k in ("data", "prior", "train"):
        if not isinstance(top.get(k) or {}, dict):
            raise InputFileError(args.config, k, "a mapping of settings", type(top[k]).__name__)
    parts = {k: dict(top.get(k) or {}) for k in ("data", "prior", "train")}
    for key, value in parse_set_options(args.set).items():
        section, _, name = key.partition(".")
        if section not in parts or not name:
            raise ArgumentError(f"--set {key}: expected SECTION.KEY with SECTION one of data, prior, train, got {key!r}")
        parts[section][name] = value
    return parts["data"], parts["prior"], parts["train"], str(top["output"])


def _check_output_folder(out: Path, option: str, data, config: str) -> None:
    """The output folder before any work: a folder (new or existing), none of the inputs and outside every input folder.

    Args:
        out: the prior's folder.
        option: where it was named (``output`` in the YAML, or ``--output``).
        data: the ``data`` settings (:class:`~medrecon.diffusion.train_config.DataConfig`).
        config: the YAML file.
    """
    from ..atomic import check_not_an_input

    inputs = [("--config", config)] + [("data.paths", p) for p in data.paths]
    if data.condition is not None:
        inputs += [("data.condition.paths", p) for p in data.condition.paths or ()]
    check_not_an_input(out, inputs, option=option)
    if out.exists() and not out.is_dir():
        raise InputFileError(out, option, "a folder for the prior (new or existing)", "an existing file")


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..config import build_settings
    from ..datasets.ct_training import load_ct_training_slices
    from ..datasets.oct_training import OCT_NORMALISATION, load_oct_training_bscans
    from ..datasets.pet_training import PET_NORMALISATION, load_pet_training_slices
    from ..datasets.sct_training import load_sct_training_blocks, load_sct_training_pairs
    from ..datasets.training_images import load_training_images, load_training_pairs, load_training_volumes
    from ..diffusion.schedule import VPSchedule
    from ..diffusion.train_config import DataConfig, PriorArchConfig
    from ..diffusion.training import NORMALISATION, TrainConfig, normalise_images, train_prior
    from ..physics.ct.transmission import HU_NORMALISATION
    from ..runtime import resolve_prior, select_device
    from ..tasks.oct.noise import estimate_noise_sigmas, training_timestep_range
    from ..tasks.registry import pair_simulator

    data_v, prior_v, train_v, output = _sections(args)
    data = build_settings(DataConfig, file_values=data_v, file=args.config, section="data")
    arch = build_settings(PriorArchConfig, file_values=prior_v, file=args.config, section="prior")
    # A translation prior (intensity: sct) draws the image from the condition at high noise, where an
    # ε-network's x̂₀ fails (docs/results/mr2ct.md): its DDPM predicts v unless the YAML says otherwise.
    translation_ddpm = data.intensity == "sct" and train_v.get("objective", TrainConfig.model_fields["objective"].default) == "ddpm"
    recommended = {"prediction": "v"} if translation_ddpm else None
    cfg = build_settings(TrainConfig, recommended=recommended, file_values=train_v, file=args.config, section="train")
    if cfg.objective == "regression" and data.condition is None:
        raise InputFileError(
            args.config,
            "train.objective",
            "'ddpm' or 'score' for a prior without condition ('regression' needs data.condition)",
            "'regression'",
        )
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise ArgumentError(f"--max-minutes: expected > 0, got {args.max_minutes}")
    out = Path(output if args.output is None else args.output)
    _check_output_folder(out, "output" if args.output is None else "--output", data, args.config)
    device = select_device(args.device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():  # started by torchrun
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda"):
            device = f"cuda:{local}"
            torch.cuda.set_device(local)
        torch.distributed.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    cond, simulate, cond_desc = None, None, ""
    normalisation, info = NORMALISATION, {}
    if arch.spatial_dims == 3 and data.intensity != "sct":  # whole volumes; training cuts random 3-D patches
        if data.condition is not None:
            raise InputFileError(args.config, "data.condition", "no condition for a 3-D prior other than intensity: sct", "a condition")
        images = normalise_images(torch.from_numpy(load_training_volumes(data.paths, data.synthetic_phase, data.seed)))
        what = f"{len(images)} volumes {tuple(images.shape[1:])}"
    elif data.intensity == "sct":
        c = data.condition
        held = {h.path: h.slices for h in data.holdout}
        if arch.spatial_dims == 3:  # blocks of train.crop slices; training cuts crop³ patches
            if cfg.crop == 0 or c.neighbours:
                raise InputFileError(
                    args.config, "train.crop", "a patch side > 0 and no condition.neighbours for a 3-D prior", f"crop {cfg.crop}"
                )
            sct = load_sct_training_blocks(data.paths, c.paths, held, cfg.crop, c.resample)
        else:
            sct = load_sct_training_pairs(data.paths, c.paths, held, c.neighbours, c.resample, data.min_fraction)
        images, cond, normalisation = torch.from_numpy(sct.images), torch.from_numpy(sct.conds), HU_NORMALISATION
        info = {
            "modality": "CT",
            "pixel_mm": list(sct.spacing_mm),
            "slice_mm": sct.slice_mm,
            "axcodes": sct.axcodes,
            "condition": sct.condition,
            "holdout": sct.holdout,
        }
        what = f"{len(images)} CT {'blocks' if arch.spatial_dims == 3 else 'slices'}"
        span = f"{cfg.crop}³ patches" if arch.spatial_dims == 3 else f"{2 * c.neighbours + 1} slices"
        files = f" {', '.join(Path(x).name for x in c.paths)}" if c.paths else ""
        cond_desc = f"; condition: the {sct.condition['modality']}{files} ({sct.condition['normalisation']}; {span})"
    elif data.intensity == "pet":  # before paired files: condition.paths are the CTs of PET volumes
        pet = load_pet_training_slices(data.paths, data.min_fraction, data.condition.paths if data.condition else None)
        images, normalisation = torch.from_numpy(pet.images), PET_NORMALISATION
        info = {"pixel_mm": pet.pixel_mm, "modality": "PET"}
        if data.condition is not None:
            cond = torch.from_numpy(pet.guides)
            info["condition"] = {"guide": "CT", "scale": "HU / 1000"}
            cond_desc = "; condition: the co-registered CT (HU / 1000)"
        what = f"{len(images)} PET slices"
    elif data.condition is not None and data.condition.paths is not None:
        imgs, conds = load_training_pairs(data.paths, data.condition.paths, data.min_fraction, data.pad_to_common)
        images, cond = normalise_images(torch.from_numpy(imgs)), normalise_images(torch.from_numpy(conds))
        what = f"{len(images)} slice pairs"
        cond_desc = f"; condition: {', '.join(Path(x).name for x in data.condition.paths)} (each normalised to its 99th percentile)"
    elif data.intensity == "oct":
        bscans = load_oct_training_bscans(data.paths, data.transform or "linear")
        for note in bscans.notes:
            print(f"medrecon: note: {note}", file=sys.stderr)
        images, normalisation, info = torch.from_numpy(bscans.images), OCT_NORMALISATION, bscans.info
        if cfg.objective == "ddpm" and "timestep_range" not in train_v:  # the band denoising uses (YAML / --set win)
            band = training_timestep_range(estimate_noise_sigmas(bscans.images), VPSchedule(cfg.num_train_timesteps))
            cfg = TrainConfig(**{**cfg.model_dump(), "timestep_range": band})
            print(f"medrecon: note: training on timesteps {band[0]}-{band[1]}, the noise levels OCT denoising uses", file=sys.stderr)
        what = f"{len(images)} noisy OCT B-scans ({data.transform or 'linear'} intensities)"
    else:
        if data.intensity == "hu":
            ct = load_ct_training_slices(data.paths, {h.path: h.slices for h in data.holdout})
            images, normalisation = torch.from_numpy(ct.images), HU_NORMALISATION
            info = {"pixel_mm": ct.pixel_mm, "holdout": ct.holdout}
        else:
            images = normalise_images(
                torch.from_numpy(load_training_images(data.paths, data.synthetic_phase, data.min_fraction, data.seed, data.pad_to_common))
            )
        what = f"{len(images)} slices"
        if data.condition is not None:
            info["condition"] = data.condition.model_dump(exclude={"paths"})
            options = dict(data.condition.options)
            if data.intensity == "hu":  # CT simulators project at the data's pixel size
                options.setdefault("pixel_mm", info["pixel_mm"])
                info["condition"]["options"] = options
            simulate = pair_simulator(data.condition.simulate, options)
            cond_desc = f"; condition simulated by {data.condition.simulate} {data.condition.options}"
    desc = (
        f"{what} from {', '.join(Path(x).name for x in data.paths)}"
        + (" (synthetic smooth phase)" if data.synthetic_phase else "")
        + cond_desc
    )
    with tqdm(total=cfg.steps, desc=f"train {cfg.objective}", unit="step", disable=args.quiet or rank != 0) as bar:

        def prog(step, total, loss):
            bar.n = step
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            bar.refresh()

        res = train_prior(
            images,
            cfg,
            out,
            arch.as_args(),
            cond=cond,
            simulate=simulate,
            data_description=desc,
            device=device,
            progress=prog,
            fp16_weights=arch.fp16_weights,
            max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
            init_from=None if args.init_from is None else resolve_prior(args.init_from),
            pool=0 if data.condition is None else data.condition.pool,
            refresh=1 if data.condition is None else data.condition.refresh,
            normalisation=normalisation,
            info=info,
        )
    if rank == 0:
        print(
            f"wrote {out}/prior.safetensors + prior.json ({res['steps']} steps, final loss {res['final_loss']:.4f}, {res['seconds']:.0f} s)"
        )
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0
