"""MR → synthetic CT on the template's held-out slab: bulk density, L1 regression, conditional DDPM and score-SDE samplers.

Run:  python benchmarks/bench_mr2ct.py --ddpm priors/mr2ct_ddpm --score priors/mr2ct_score --regression priors/mr2ct_l1
      [--samples 4] [--summaries mean,median] [--subsets 1,4] [--steps 50] [--volume]
      python benchmarks/bench_mr2ct.py --pet --ddpm priors/pet2ct_ddpm --regression priors/pet2ct_l1   (NAC-PET → CT)
Writes benchmarks/results/mr2ct.md (pet2ct.md with --pet) from the rows in mr2ct.json (pet2ct.json),
which every run updates (so the priors can be measured in separate runs), and mr2ct_reformat.png
with --volume.

``--pet``: the 10 real NAC-PET / CT slice pairs of ``../shared/data/pet/pet_ct_train_part4.npz``
(research use), which ``configs/pet2ct.yaml`` holds out whole; the CT on the PET's 250² grid
(:func:`~medrecon.datasets.pet_images.read_pet_ct_npz`) is the target, metrics inside its body.
The bulk-density row is MR-only (its thresholds are T1 contrasts).

Data: the co-registered CT (HU) / T1 template pair of ``../shared/data/mr2ct`` (Rorden et al. 2012,
BSD-2-Clause; population averages, not one person), 128³ at 1.42 × 1.70 × 1.42 mm. The priors were
trained on axial slices outside the slab their ``prior.json`` records as held out (28-43 for the
config ``configs/mr2ct_head.yaml``: skull base and orbits) and the neighbours of that slab; the
metrics are over that slab only, inside the target's body mask
(:mod:`medrecon.evaluation.sct_metrics`). The bulk-density thresholds were tuned on the training
slices. ``--volume`` also compares, on the slab, slices sampled with independent noise, with one
noise draw shared by all slices, and with a slice coupling, by the z-flicker of a reformat.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from medrecon.config import build_settings
from medrecon.datasets.ct_volume import read_ct
from medrecon.datasets.mr_volume import mr_scale, read_mr
from medrecon.datasets.pet_images import NPZ_PIXEL_MM, read_pet_ct_npz
from medrecon.datasets.pet_training import pet_scale
from medrecon.datasets.sct_training import stack_neighbours
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.ct_metrics import body_mask, z_flicker
from medrecon.evaluation.sct_metrics import sct_metrics
from medrecon.tasks.mr2ct.bulk import bulk_density_ct
from medrecon.tasks.mr2ct.config import TranslateConfig
from medrecon.tasks.mr2ct.translate import check_prior_for_sct, recommended_settings, sample_slices, summarise_samples

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mr2ct"
PET_CASE = DATA.parent / "pet" / "pet_ct_train_part4.npz"
RESULTS = Path(__file__).parent / "results"
COLUMNS = ("MAE_body_HU", "ME_body_HU", "MAE_bone_HU", "Dice_bone", "PSNR", "SSIM")


def load_case() -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Template CT (HU) and T1 normalised by its scale, ``(slices, rows, cols)``, and the ``(row, col)`` pixel size."""
    ct = read_ct(DATA / "template_ct_hu_128.nii.gz")
    mr = read_mr(DATA / "template_t1_128.nii.gz")
    col, row = np.linalg.norm(ct.affine[:3, :2], axis=0)
    return ct.hu, mr.values / mr_scale(mr.values), (float(row), float(col))


def load_pet_case() -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The held-out NAC-PET / CT pairs: CT (HU) on the PET grid, NAC-PET on the priors' scale, ``(S, 250, 250)``, pixel size."""
    im = read_pet_ct_npz(PET_CASE)
    return im.guide_hu, (im.activity / pet_scale(im.activity)[:, None, None]).astype(np.float32), (NPZ_PIXEL_MM, NPZ_PIXEL_MM)


def slab_of(denoiser, modality: str = "MR") -> tuple[int, int]:
    """The held-out slice range the prior records."""
    held = check_prior_for_sct(denoiser, "benchmark", modality).get("holdout") or []
    if not held:
        raise SystemExit("the prior records no held-out slab")
    return tuple(held[0]["slices"])


def mirror_for(denoiser, args) -> bool:
    """``--mirror`` where given, else what ``translate`` would use: the prior's recommendation, else the default."""
    if args.mirror is not None:
        return bool(args.mirror)
    return build_settings(TranslateConfig, recommended=recommended_settings(denoiser, "pet2ct" if args.pet else "mr2ct")).mirror


def run(denoiser, mr: np.ndarray, slab: tuple[int, int], cfg: TranslateConfig) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Synthetic CT of the slab slices (their 2.5-D conditions from the whole MR), its std and seconds per slice."""
    samples, dt = run_samples(denoiser, mr, slab, cfg)
    hu, std = summarise_samples(samples, cfg.summary)
    return hu.numpy(), None if std is None else std.numpy(), dt


def run_samples(denoiser, mr: np.ndarray, slab: tuple[int, int], cfg: TranslateConfig) -> tuple[torch.Tensor, float]:
    """CT samples ``(S, N, H, W)`` in HU of the slab slices and seconds per slice."""
    n = int(denoiser.info["condition"].get("neighbours", 0))
    cond = torch.from_numpy(stack_neighbours(mr.astype(np.float32), np.ones(mr.shape[0], bool), n))[slab[0] : slab[1] + 1]
    t0 = time.perf_counter()
    samples = torch.cat(list(sample_slices(cond, denoiser, cfg)))
    return samples, (time.perf_counter() - t0) / cond.shape[0]


def render(rows: dict, flicker: dict) -> str:
    """The markdown of every row measured so far (rows: label → metrics, seconds, setting)."""
    intro = next(iter(rows.values()))["intro"] if rows else ""
    lines = [
        intro,
        "",
        "| method | MAE body HU | ME body HU | MAE bone HU | bone Dice | PSNR dB | SSIM | s / slice | std: Spearman, within 2 std |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        m = r["metrics"]
        vals = " | ".join(
            "n/a" if m[k] is None else f"{m[k]:.3f}" if k in ("Dice_bone", "SSIM") else f"{m[k]:.1f}" if "HU" in k else f"{m[k]:.2f}"
            for k in COLUMNS
        )
        cal = f"{m['std_error_spearman']:.2f}, {m['within_2std']:.2f}" if "std_error_spearman" in m else ""
        lines.append(f"| {label} ({r['setting']}) | {vals} | {r['seconds']:.2f} | {cal} |")
    if flicker:
        lines += [
            "",
            "Reformat consistency on the slab: z-flicker = mean |Δz sCT − Δz CT| over the body (HU, window [-1000, 1000]).",
            "",
            "| slices | z-flicker HU | MAE body HU | s / slice |",
            "|---|---|---|---|",
        ]
        lines += [f"| {label} | {f['flicker']:.1f} | {f['mae']:.1f} | {f['seconds']:.2f} |" for label, f in flicker.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpm", default=None, help="conditional DDPM prior folder")
    ap.add_argument("--score", default=None, help="conditional score (VE) prior folder")
    ap.add_argument("--regression", default=None, help="L1 regression prior folder")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument(
        "--tile", type=int, default=TranslateConfig().tile, help="the network sees tile x tile windows of each slice (0: whole)"
    )
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--start", type=float, default=1.0, help="< 1: chains refine the prior's own first estimate from that noise level")
    ap.add_argument(
        "--mirror",
        type=int,
        default=None,
        help="1: every other sample on the mirrored slices, 0: none (default: the prior's recommendation, else off)",
    )
    ap.add_argument("--summaries", default="mean", help="comma-separated: mean, median — of the same samples, one row each")
    ap.add_argument("--subsets", default="", help="comma-separated sample counts below --samples also scored, from the first k samples")
    ap.add_argument("--samplers", default=None, help="comma-separated subset of ddim,ddpm,ve_pc,ve_em,ve_ode (default: all that fit)")
    ap.add_argument("--volume", action="store_true", help="also: independent / shared noise / coupled slices (z-flicker)")
    ap.add_argument("--time-windows", action="store_true", help="only time whole slices against --tile windows (2 slab slices, alternated)")
    ap.add_argument("--pet", action="store_true", help="NAC-PET → CT on the held-out PET/CT pairs (priors from configs/pet2ct.yaml)")
    ap.add_argument("--out", default=None, help="markdown table (default results/mr2ct.md, results/pet2ct.md with --pet)")
    args = ap.parse_args()
    args.tile = args.tile or None
    args.out = args.out or str(RESULTS / ("pet2ct.md" if args.pet else "mr2ct.md"))
    torch.set_num_threads(2)
    ct, mr, pixel = load_pet_case() if args.pet else load_case()
    priors = {k: load_prior(v) for k, v in (("ddpm", args.ddpm), ("score", args.score), ("regression", args.regression)) if v}
    slabs = {slab_of(d, "PET" if args.pet else "MR") for d in priors.values()}
    if len(slabs) != 1:
        raise SystemExit(f"the priors hold out different slabs: {slabs}")
    slab = slabs.pop()
    if args.time_windows:
        time_windows(priors, mr, slab, args)
        return
    target = ct[slab[0] : slab[1] + 1]
    body = body_mask(target)
    store = Path(args.out).with_suffix(".json")
    saved = json.loads(store.read_text()) if store.exists() else {"rows": {}, "flicker": {}}
    intro = (
        f"Held-out axial slab {slab[0]}-{slab[1]} of the CT/T1 template pair ({len(target)} slices, 128 x 128, skull base "
        f"and orbits); metrics inside the target's body ({int(body.sum())} voxels), PSNR / SSIM over [-1024, 3071] HU; "
        "2 CPU cores (shared with a training run for some rows)."
    )
    if args.pet:
        intro = (
            f"Held-out NAC-PET / CT pairs {slab[0]}-{slab[1]} of {PET_CASE.name} ({len(target)} real slices, CT resampled to the "
            f"PET's 250 x 250 grid); metrics inside the CT's body ({int(body.sum())} pixels), PSNR / SSIM over [-1024, 3071] HU; "
            "2 CPU cores."
        )

    def keep(label: str, hu: np.ndarray, std, seconds: float, setting: str) -> None:
        m = sct_metrics(target, hu, body, std_hu=std)
        m.pop("per_slice")
        saved["rows"][label] = {"metrics": m, "seconds": seconds, "setting": setting, "intro": intro}
        sct_dir = store.with_name(store.stem + "_sct.tmp")  # the slab's synthetic CTs (git-ignored), for figures
        sct_dir.mkdir(exist_ok=True)
        np.save(sct_dir / (re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") + ".npy"), hu.astype(np.float16))
        store.write_text(json.dumps(saved, indent=1))
        print(label, setting, {k: round(v, 3) for k, v in m.items() if isinstance(v, float)}, f"{seconds:.2f} s/slice", flush=True)

    if not args.pet:
        t0 = time.perf_counter()
        bulk = bulk_density_ct(mr[slab[0] : slab[1] + 1], pixel, TranslateConfig(method="bulk"))
        keep("bulk density", bulk, None, (time.perf_counter() - t0) / len(target), "air / soft tissue 40 / bone 700 HU")
    chosen = None if args.samplers is None else set(args.samplers.split(","))
    runs = []
    if "regression" in priors:
        runs.append(
            (
                "L1 regression",
                priors["regression"],
                TranslateConfig(tile=args.tile, mirror=mirror_for(priors["regression"], args)),
                f"same U-Net, {priors['regression'].info['training_steps']} steps",
            )
        )
    # the VE samplers run on the DDPM prior too (over its noise levels): all five on one network
    for kind, samplers in (("ddpm", ("ddim", "ddpm", "ve_pc", "ve_em", "ve_ode")), ("score", ("ve_pc", "ve_em", "ve_ode"))):
        if kind not in priors:
            continue
        d = priors[kind]
        for sampler in samplers:
            if chosen is not None and sampler not in chosen:
                continue
            steps = args.steps // 2 if sampler in ("ve_pc", "ve_ode") else args.steps
            evals = {"ve_pc": 2 * steps, "ve_ode": 2 * steps - 1}.get(sampler, steps) + (args.start < 1)
            name = f"conditional DDPM ({'ε' if d.prediction == 'epsilon' else 'v'})" if kind == "ddpm" else "conditional score SDE"
            setting = f"{evals} evaluations, {d.info['training_steps']} training steps"
            setting += f", from its first estimate at {args.start:g} of the schedule" if args.start < 1 else ""
            runs.append(
                (
                    f"{name}, {sampler}, SUMMARY of {args.samples}",
                    d,
                    TranslateConfig(
                        sampler=sampler, steps=steps, start=args.start, samples=args.samples, tile=args.tile, mirror=mirror_for(d, args)
                    ),
                    setting,
                )
            )
    for label, d, cfg, setting in runs:
        setting += f", network on {cfg.tile}² windows" if cfg.tile else ""
        setting += ", mirror views" if cfg.mirror and (cfg.samples > 1 or "regression" in label) else ""
        samples, dt = run_samples(d, mr, slab, cfg)
        if "SUMMARY" not in label:
            keep(label, *(None if v is None else v.numpy() for v in summarise_samples(samples)), dt, setting)
            continue
        for k in sorted({int(v) for v in args.subsets.split(",") if v and 0 < int(v) < cfg.samples} | {cfg.samples}):
            for summary in [m for m in args.summaries.split(",") if k > 2 or m == "mean"]:  # the first k samples: k independent samples
                hu, std = summarise_samples(samples[:, :k], summary)
                name = label.replace("SUMMARY", summary).replace(f"of {cfg.samples}", f"of {k}")
                keep(name, hu.numpy(), None if std is None else std.numpy(), dt * k / cfg.samples, setting)
    if args.volume:
        saved["flicker"].update(volume_section(priors, mr, slab, target, body, args))
        store.write_text(json.dumps(saved, indent=1))
    text = render(saved["rows"], saved["flicker"])
    print(text)
    Path(args.out).write_text(text)


def time_windows(priors: dict, mr: np.ndarray, slab: tuple[int, int], args) -> None:
    """Seconds per slice of each prior on whole slices and on ``--tile`` windows, two slices, alternated twice."""
    two, times = (slab[0], slab[0] + 1), {}
    for _ in range(2):
        for tile in (None, args.tile):
            for kind, d in priors.items():
                cfg = (
                    TranslateConfig(tile=tile)
                    if kind == "regression"
                    else TranslateConfig(steps=args.steps, samples=args.samples, tile=tile)
                )
                times.setdefault((kind, tile), []).append(run_samples(d, mr, two, cfg)[1])
    for kind in priors:
        whole, win = (float(np.mean(times[(kind, t)])) for t in (None, args.tile))
        print(f"{kind}: whole slices {whole:.2f} s / slice, {args.tile}² windows {win:.2f} s / slice ({win / whole:.2f}x)")


def volume_section(priors: dict, mr: np.ndarray, slab: tuple[int, int], target: np.ndarray, body: np.ndarray, args) -> dict:
    """z-flicker of the slab sampled with independent noise, shared noise, and a slice coupling (DDPM prior, DDIM)."""
    d = priors.get("ddpm") or priors.get("score")
    out, panels = {}, [("CT", target)]
    for label, cfg in (
        ("independent noise", TranslateConfig(steps=args.steps, samples=args.samples, tile=args.tile, shared_noise=False)),
        ("one noise draw shared by all slices", TranslateConfig(steps=args.steps, samples=args.samples, tile=args.tile, shared_noise=True)),
        (
            "shared noise + coupling β = 1",
            TranslateConfig(steps=args.steps, samples=args.samples, tile=args.tile, shared_noise=True, coupling=1.0),
        ),
    ):
        hu, _, dt = run(d, mr, slab, cfg)
        key = f"{label} ({args.samples} samples, {args.steps} steps)"
        out[key] = {"flicker": z_flicker(hu, target, body), "mae": sct_metrics(target, hu, body)["MAE_body_HU"], "seconds": dt}
        panels.append((label, hu))
        print(key, out[key], flush=True)
    _figure(panels, RESULTS / "mr2ct_reformat.png")
    return out


def _figure(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Coronal reformats through the slab (rows = slices, 1.42 mm; columns 1.42 mm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(6, 1.6 * len(panels)))
    for ax, (title, vol) in zip(axes, panels):
        ax.imshow(vol[::-1, vol.shape[1] // 2 + 10, :], cmap="gray", vmin=-200, vmax=1200)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
