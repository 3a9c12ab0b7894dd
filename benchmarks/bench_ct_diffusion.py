"""Diffusion reconstruction of real CT slices from simulated limited-angle scans: conditional vs unconditional.

Run:  python benchmarks/bench_ct_diffusion.py --prior priors/ct_lact_dolce --baselines   (table, slices 9-10)
      python benchmarks/bench_ct_diffusion.py --prior priors/ct_lact_dolce --tune     (settings grid, slice 8)
      python benchmarks/bench_ct_diffusion.py --prior medrecon/priors/ct --tune --scans 1 --grid '[{"start": 0.2}]'
      python benchmarks/bench_ct_diffusion.py --prior medrecon/priors/ct --recommended --scans 5   (as `reconstruct ct --prior` runs)
      ... --baselines --error-split results/ct_error_regions.png   (where each method's whole-image error lies)

Writes benchmarks/results/ct_diffusion.md (or --out).

Data: ``ct/totalseg_abdomen_ct_dicom`` (Apache-2.0), the same scans as ``bench_ct_real.py`` (same
simulation, same noise seed, 1e5 photons per bin), so its FBP / SIRT / TV rows compare directly.
Slices 8-11 are held out of the prior's training (``configs/ct_lact_dolce.yaml``); the settings are
chosen on slice 8, the table is slices 9 and 10. Both variants use the same network: ``conditional``
is given the FBP image of the scan (DOLCE), ``unconditional`` a zero condition (the network was
trained with 10 % condition dropout for this).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_ct_real import DATA, SCANS, SIRT_ITERS, TV_ITERS, scan, tv_weight

from medrecon.config import parse_set_options
from medrecon.datasets.ct_volume import read_ct
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.ct_metrics import DEFAULT_WINDOW, body_mask, hu_metrics
from medrecon.physics.ct.transmission import mu_to_hu
from medrecon.tasks.ct.config import CTDiffusionConfig, recommended_settings
from medrecon.tasks.ct.diffusion import check_prior_for_ct, initial_estimate_hu, reconstruct_slices
from medrecon.tasks.ct.fbp import fbp
from medrecon.tasks.ct.iterative import sirt, tv_pdhg

EVAL_SLICES, TUNE_SLICE = [9, 10], 8
GRID = [  # settings scored on slice 8 by --tune (each on top of the defaults and --set)
    {"init": "sirt", "start": 0.2, "condition": "none"},
    {"init": "sirt", "start": 0.2},
    {"init": "sirt", "start": 0.4},
    {"init": "sirt", "start": 0.2, "dc_lam": 1e-3},
    {"init": "fbp", "start": 0.5},
]
SPLIT_BAND_PX = 15  # --error-split: the band just outside the body (its outline in the missing wedge)
_INITIAL: dict = {}  # one scan's warm-start estimates per (init, iterations, TV weight): computed once, timed once


def run(y, geom, denoiser, cfg: CTDiffusionConfig) -> tuple[np.ndarray, float]:
    """Mean HU ``(S, H, W)`` and seconds per slice (the warm start's estimate included)."""
    check_prior_for_ct(denoiser, geom, cfg, "benchmark")
    key = (cfg.init, cfg.init_iterations, cfg.tv_lam if cfg.init == "tv" else None)
    if cfg.start < 1 and key not in _INITIAL:
        t0 = time.perf_counter()
        _INITIAL[key] = (initial_estimate_hu(y, geom, cfg), time.perf_counter() - t0)
    init, init_s = _INITIAL.get(key, (None, 0.0)) if cfg.start < 1 else (None, 0.0)
    t0 = time.perf_counter()
    mean = reconstruct_slices(y, geom, denoiser, cfg, torch.Generator().manual_seed(cfg.seed), initial_hu=init).mean
    return mean.numpy(), (time.perf_counter() - t0 + init_s) / y.shape[0]


def error_regions(target: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    """Disjoint regions of ``target`` ``(S, H, W)`` HU that split the whole-image squared error: the body,
    a band of SPLIT_BAND_PX pixels just outside it, objects outside it (table, above -900 HU), the air."""
    from scipy import ndimage

    grown = np.stack([ndimage.binary_dilation(b, iterations=SPLIT_BAND_PX) for b in body])
    rest = ~grown
    return {
        "body": body,
        f"{SPLIT_BAND_PX} px outside the body": grown & ~body,
        "table and objects outside": rest & (target > -900),
        "air": rest & (target <= -900),
    }


def error_split_lines(target: np.ndarray, body: np.ndarray, recons: dict[str, np.ndarray], figure: Path) -> list[str]:
    """A table of where each reconstruction's whole-image squared error (in hu_metrics' window) lies, and a
    figure of slice 0: the target and each reconstruction's error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    regions = error_regions(target, body)
    lo, hi = DEFAULT_WINDOW
    t = np.clip(target, lo, hi)
    fractions = " / ".join(f"{100 * m.mean():.0f} %" for m in regions.values())
    lines = [
        f"\nWhere the whole-image squared error lies ({' / '.join(regions)}: {fractions} of the pixels): "
        "RMSE HU in each region, and its share of the whole-image squared error.\n",
        "| method | " + " | ".join(regions) + " |",
        "|---|" + "---|" * len(regions),
    ]
    for method, hu in recons.items():
        se = (np.clip(hu, lo, hi) - t) ** 2
        cells = [f"{np.sqrt(se[m].mean()):.0f} HU, {100 * se[m].sum() / se.sum():.0f} %" for m in regions.values()]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    fig, ax = plt.subplots(1, 1 + len(recons), figsize=(4 * (1 + len(recons)), 4.3))
    ax[0].imshow(t[0], cmap="gray", vmin=lo, vmax=hi)
    ax[0].set_title("target")
    for a, (method, hu) in zip(ax[1:], recons.items()):
        a.imshow(np.clip(hu[0], lo, hi) - t[0], cmap="bwr", vmin=-500, vmax=500)
        a.set_title(f"{method}: error (±500 HU)", fontsize=9)
    for a in ax:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(figure, dpi=70)
    plt.close(fig)
    from PIL import Image

    Image.open(figure).convert("RGB").quantize(colors=128).save(figure, optimize=True)  # a third of the bytes
    return lines + [f"\nFigure (slice {EVAL_SLICES[0]}): `{figure.name}`.\n"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", required=True)
    ap.add_argument(
        "--scans",
        default="0",
        help="comma-separated scan numbers of bench_ct_real.SCANS (0: 90°, 1: 120°, 2: 60 views, 3: 60°, 4: 90° fan, 5: 360°)",
    )
    ap.add_argument("--tune", action="store_true", help="score the settings grid on slice 8 and stop")
    ap.add_argument("--grid", help="with --tune: a JSON list of settings to score instead of GRID, e.g. '[{\"start\": 0.2}]'")
    ap.add_argument(
        "--recommended",
        action="store_true",
        help="start from the prior's recommended settings for each scan's arc (what `reconstruct ct --prior` uses); --set overrides",
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a CTDiffusionConfig setting (repeatable)")
    ap.add_argument(
        "--baselines", action="store_true", help="also FBP / SIRT / TV rows (TV weight chosen on slice 0 as bench_ct_real.py does)"
    )
    ap.add_argument("--variants", default="unconditional,conditional", help="diffusion rows: unconditional and/or conditional")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ct_diffusion.md"))
    ap.add_argument("--error-split", metavar="FIGURE.png", help="also split each method's squared error by region (first scan)")
    args = ap.parse_args()
    torch.manual_seed(0)
    denoiser = load_prior(args.prior)
    steps_trained = denoiser.info.get("training_steps")
    prior_beam = denoiser.info.get("condition", {}).get("options", {}).get("beam", "parallel")
    base = parse_set_options(args.set)

    def settings(arc: float | None) -> dict:
        """The diffusion settings of a scan over ``arc`` degrees (None: 180): --set over the prior's recommendation."""
        return {**(recommended_settings(denoiser.info, arc or 180.0) if args.recommended else {}), **base}

    vol = read_ct(DATA)
    names = [list(SCANS)[int(i)] for i in args.scans.split(",")]
    if args.tune:
        target = vol.hu[[TUNE_SLICE]]
        body = body_mask(target)
        for name in names:
            arc, views, beam = SCANS[name]
            geom, _, y = scan(target, arc, views, seed=1, beam=beam)
            _INITIAL.clear()
            for setting in json.loads(args.grid) if args.grid else GRID:
                mean, dt = run(y, geom, denoiser, CTDiffusionConfig(**{**settings(arc), **setting}))
                m, b = hu_metrics(target, mean), hu_metrics(target, mean, mask=body)
                print(
                    f"{name} {setting}: {m['PSNR']:.2f} dB, SSIM {m['SSIM']:.3f}, MAE {m['MAE_HU']:.1f} | body {b['PSNR']:.2f} dB, "
                    f"SSIM {b['SSIM']:.3f}, MAE {b['MAE_HU']:.1f} | {dt:.0f} s",
                    flush=True,
                )
        return
    target = vol.hu[EVAL_SLICES]
    body = body_mask(target)
    origin = "the prior's recommendation for each scan's arc" if args.recommended else "CTDiffusionConfig defaults"
    lines = [
        f"Prior `{args.prior}` ({steps_trained} training steps); real abdominal CT slices {EVAL_SLICES} (held out), 512², 0.98 mm; "
        "the scans of bench_ct_real.py (parallel beam unless the scan says fan, 1e5 photons/bin, noise seed 1); HU window [-1000, 1000], whole image and "
        "over the body (largest region above -500 HU, holes filled); 2 CPU cores; "
        f"diffusion settings: {origin}{', then ' + json.dumps(base) if base else ''}.\n",
        "| scan | method | PSNR dB | SSIM | MAE HU | body PSNR | body SSIM | body MAE | NFE | s / slice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    recons: dict[str, np.ndarray] = {}  # the first scan's reconstructions, for --error-split

    def row(name: str, method: str, hu: np.ndarray, nfe: str, dt: float) -> None:
        if args.error_split and name == names[0]:
            recons[method] = hu
        m, b = hu_metrics(target, hu), hu_metrics(target, hu, mask=body)
        lines.append(
            f"| {name} | {method} | {m['PSNR']:.2f} | {m['SSIM']:.3f} | {m['MAE_HU']:.1f} | {b['PSNR']:.2f} | {b['SSIM']:.3f} | "
            f"{b['MAE_HU']:.1f} | {nfe} | {dt:.0f} |"
        )
        print(lines[-1], flush=True)

    for name in names:
        arc, views, beam = SCANS[name]
        geom, op, y = scan(target, arc, views, seed=1, beam=beam)
        _INITIAL.clear()  # the warm start belongs to this scan's data (its key does not name the scan)
        if args.baselines:
            lam = tv_weight(vol.hu[:1], name)
            for method, fn in (
                ("FBP (ram-lak)", lambda: fbp(y, geom, "ram-lak", op)),
                (f"SIRT ({SIRT_ITERS} it)", lambda: sirt(op, y, SIRT_ITERS)),
                (f"TV (λ {lam:g}, {TV_ITERS} it)", lambda: tv_pdhg(op, y, lam, TV_ITERS)),
            ):
                t0 = time.perf_counter()
                hu = mu_to_hu(fn()).numpy()
                row(name, method, hu, "–", (time.perf_counter() - t0) / len(EVAL_SLICES))
        for variant, cond in (("unconditional", "none"), ("conditional (DOLCE)", "fbp")):
            if variant.split()[0] not in args.variants.split(","):
                continue
            if cond == "fbp" and beam != prior_beam:
                lines.append(f"| {name} | diffusion, {variant}: refused, the prior's condition is {prior_beam}-beam FBP |" + " – |" * 8)
                continue
            cfg = CTDiffusionConfig(**{**settings(arc), "condition": cond})
            mean, dt = run(y, geom, denoiser, cfg)
            row(name, f"diffusion, {variant}", mean, str(cfg.steps), dt)
    if args.error_split:
        lines += error_split_lines(target, body, recons, Path(args.error_split))
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
