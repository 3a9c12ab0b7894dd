"""MR → synthetic CT on the template's held-out slab: bulk density, L1 regression, conditional DDPM and score-SDE samplers.

Run:  python benchmarks/bench_mr2ct.py --ddpm priors/mr2ct_ddpm --score priors/mr2ct_score --regression priors/mr2ct_l1
      [--samples 4] [--steps 50] [--volume]
Writes benchmarks/results/mr2ct.md (and mr2ct_reformat.png with --volume).

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
import time
from pathlib import Path

import numpy as np
import torch

from medrecon.datasets.ct_volume import read_ct
from medrecon.datasets.mr_volume import mr_scale, read_mr
from medrecon.datasets.sct_training import stack_neighbours
from medrecon.diffusion.training import load_prior
from medrecon.evaluation.ct_metrics import body_mask, z_flicker
from medrecon.evaluation.sct_metrics import sct_metrics
from medrecon.tasks.mr2ct.bulk import bulk_density_ct
from medrecon.tasks.mr2ct.config import TranslateConfig
from medrecon.tasks.mr2ct.translate import check_prior_for_sct, translate_slices

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mr2ct"
RESULTS = Path(__file__).parent / "results"
COLUMNS = ("MAE_body_HU", "ME_body_HU", "MAE_bone_HU", "Dice_bone", "PSNR", "SSIM")


def load_case() -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Template CT (HU) and T1 normalised by its scale, ``(slices, rows, cols)``, and the ``(row, col)`` pixel size."""
    ct = read_ct(DATA / "template_ct_hu_128.nii.gz")
    mr = read_mr(DATA / "template_t1_128.nii.gz")
    col, row = np.linalg.norm(ct.affine[:3, :2], axis=0)
    return ct.hu, mr.values / mr_scale(mr.values), (float(row), float(col))


def slab_of(denoiser) -> tuple[int, int]:
    """The held-out slice range the prior records."""
    held = check_prior_for_sct(denoiser, "benchmark").get("holdout") or []
    if not held:
        raise SystemExit("the prior records no held-out slab")
    return tuple(held[0]["slices"])


def run(denoiser, mr: np.ndarray, slab: tuple[int, int], cfg: TranslateConfig) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Synthetic CT of the slab slices (their 2.5-D conditions from the whole MR), its std and seconds per slice."""
    n = int(denoiser.info["condition"].get("neighbours", 0))
    cond = torch.from_numpy(stack_neighbours(mr.astype(np.float32), np.ones(mr.shape[0], bool), n))[slab[0] : slab[1] + 1]
    t0 = time.perf_counter()
    hu, std = translate_slices(cond, denoiser, cfg)
    return hu, std, (time.perf_counter() - t0) / cond.shape[0]


def row(label: str, m: dict, seconds: float, extra: str = "") -> str:
    vals = " | ".join(
        "n/a" if m[k] is None else f"{m[k]:.3f}" if k in ("Dice_bone", "SSIM") else f"{m[k]:.1f}" if "HU" in k else f"{m[k]:.2f}"
        for k in COLUMNS
    )
    return f"| {label} | {vals} | {seconds:.2f} |{extra}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ddpm", default=None, help="conditional DDPM prior folder")
    ap.add_argument("--score", default=None, help="conditional score (VE) prior folder")
    ap.add_argument("--regression", default=None, help="L1 regression prior folder")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--volume", action="store_true", help="also: independent / shared noise / coupled slices (z-flicker)")
    ap.add_argument("--out", default=str(RESULTS / "mr2ct.md"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    ct, mr, pixel = load_case()
    priors = {k: load_prior(v) for k, v in (("ddpm", args.ddpm), ("score", args.score), ("regression", args.regression)) if v}
    slabs = {slab_of(d) for d in priors.values()}
    if len(slabs) != 1:
        raise SystemExit(f"the priors hold out different slabs: {slabs}")
    slab = slabs.pop()
    target = ct[slab[0] : slab[1] + 1]
    body = body_mask(target)
    lines = [
        f"Held-out axial slab {slab[0]}-{slab[1]} of the CT/T1 template pair ({len(target)} slices, 128 x 128, "
        f"skull base and orbits); metrics inside the target's body ({int(body.sum())} voxels), PSNR / SSIM over "
        f"[-1024, 3071] HU; diffusion: mean of {args.samples} samples, {args.steps} steps; 2 CPU cores. Priors: "
        + ", ".join(f"{k} {d.info.get('training_steps')} steps" for k, d in priors.items())
        + ".",
        "",
        "| method | MAE body HU | ME body HU | MAE bone HU | bone Dice | PSNR dB | SSIM | s / slice | std: Spearman, within 2 std |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    t0 = time.perf_counter()
    bulk = bulk_density_ct(mr[slab[0] : slab[1] + 1], pixel, TranslateConfig(method="bulk"))
    lines.append(
        row(
            "bulk density (air / soft tissue 40 / bone 700 HU)",
            sct_metrics(target, bulk, body),
            (time.perf_counter() - t0) / len(target),
            " |",
        )
    )
    runs = []
    if "regression" in priors:
        runs.append(("L1 regression (same U-Net)", priors["regression"], TranslateConfig()))
    if "ddpm" in priors:
        for sampler in ("ddim", "ddpm"):
            runs.append(
                (
                    f"conditional DDPM, {sampler} {args.steps}",
                    priors["ddpm"],
                    TranslateConfig(sampler=sampler, steps=args.steps, samples=args.samples),
                )
            )
    if "score" in priors:
        for sampler, steps in (("ve_pc", args.steps // 2), ("ve_em", args.steps), ("ve_ode", args.steps // 2)):
            label = (
                f"conditional score SDE, {sampler} ({args.steps} evaluations)"
                if sampler != "ve_ode"
                else f"conditional score SDE, probability-flow ODE ({2 * steps - 1} evaluations)"
            )
            runs.append((label, priors["score"], TranslateConfig(sampler=sampler, steps=steps, samples=args.samples)))
    results = {}
    for label, d, cfg in runs:
        hu, std, dt = run(d, mr, slab, cfg)
        m = sct_metrics(target, hu, body, std_hu=std)
        extra = f" {m['std_error_spearman']:.2f}, {m['within_2std']:.2f} |" if std is not None else " |"
        lines.append(row(label, m, dt, extra))
        results[label] = hu
        print(lines[-1], flush=True)
    if args.volume:
        lines += volume_section(priors, mr, slab, target, body, args)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


def volume_section(priors: dict, mr: np.ndarray, slab: tuple[int, int], target: np.ndarray, body: np.ndarray, args) -> list[str]:
    """z-flicker of the slab sampled with independent noise, shared noise, and a slice coupling."""
    d = priors.get("ddpm") or priors.get("score")
    out = [
        "",
        f"Reformat consistency on the slab, {args.samples} samples, the {'DDPM' if 'ddpm' in priors else 'score'} prior: "
        "z-flicker = mean |Δz sCT − Δz CT| over the body (HU, window [-1000, 1000]).",
        "",
        "| slices | z-flicker HU | MAE body HU | s / slice |",
        "|---|---|---|---|",
    ]
    panels = [("CT", target)]
    for label, cfg in (
        ("independent noise", TranslateConfig(steps=args.steps, samples=args.samples, shared_noise=False)),
        ("one noise draw shared by all slices", TranslateConfig(steps=args.steps, samples=args.samples, shared_noise=True)),
        ("shared noise + coupling β = 1", TranslateConfig(steps=args.steps, samples=args.samples, shared_noise=True, coupling=1.0)),
    ):
        hu, _, dt = run(d, mr, slab, cfg)
        out.append(f"| {label} | {z_flicker(hu, target, body):.1f} | {sct_metrics(target, hu, body)['MAE_body_HU']:.1f} | {dt:.2f} |")
        panels.append((label, hu))
        print(out[-1], flush=True)
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
