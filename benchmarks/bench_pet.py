"""Low-count PET on real FDG slices: OSEM + Gaussian and MAP-EM (RDP) at the literature's dose fractions.

Run:  python benchmarks/bench_pet.py [--retune]  (tunes FWHM and β on training slices once, then the table)
      python benchmarks/bench_pet.py --prior priors/pet_ct_guided [--tune-diffusion]
                                          (adds diffusion rows, unguided and CT-guided, to the table)
Writes benchmarks/results/pet_baselines.md and pet_tuning.json (or pet_diffusion.md with --prior).

Data: the 40 NAC-PET / CT slice pairs of ``../shared/data/pet`` (PET_AC_sCT, research use only).
The low-count data are SIMULATED from the real slices through the package's emission model
(``medrecon simulate pet``: attenuation from the slice's CT at 511 keV, 30 % uniform randoms +
scatter, Poisson prompts): no real low/full-count pairs exist with usable terms. Full count =
5e6 prompts per slice (``FULL_COUNTS``); dose fractions 1/4, 1/10, 1/20, 1/50.

Held out (the table): part 4, slices 0, 3, 6, 9 (global 30, 33, 36, 39) — the diffusion prior
trains on parts 1-3. Tuning (FWHM, β): part 1, slices 2, 7 and part 2, slices 2, 7.
Metrics per slice against the activity image (the truth on the reconstruction's scale) and against
the full-count OSEM reconstruction: PSNR (range = the truth's max), SSIM, NRMSE; the bias of the
mean in a hot region (truth ≥ 75 % of its 99.5th percentile) and in a warm background region
(head voxels between 10 % and 30 % of that level, away from the hot region).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from medrecon.datasets.pet_images import read_pet_ct_npz
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.metrics import ssim
from medrecon.physics.pet import EmissionOperator
from medrecon.tasks.pet.config import DOSE_FRACTIONS, FULL_COUNTS, PETDenoiseConfig, PETDiffusionConfig, PETScanSpec
from medrecon.tasks.pet.diffusion import denoise_slices, reconstruct_slices
from medrecon.tasks.pet.em import gaussian_postfilter, map_em_rdp, osem
from medrecon.tasks.pet.simulate import emission_scan

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pet"
RESULTS = Path(__file__).parent / "results"
TUNE = [(1, [2, 7]), (2, [2, 7])]
HELD_OUT = [(4, [0, 3, 6, 9])]
FWHM_GRID = [2.0, 4.0, 6.0, 8.0, 10.0]
BETA_GRID = [0.003, 0.01, 0.03, 0.1, 0.3]
OSEM_ITERS, MAP_ITERS, SUBSETS = 4, 20, 8


def load(parts):
    ims = [read_pet_ct_npz(DATA / f"pet_ct_train_part{p}.npz", sl) for p, sl in parts for sl in ([s] for s in sl)]
    return ims


def scans(images, counts: float, seed: int):
    out = []
    for k, im in enumerate(images):
        spec = PETScanSpec(counts=counts, seed=seed + k)
        sc = emission_scan(im, spec)
        geom = spec.geometry(*im.activity.shape[1:], im.pixel_mm)
        out.append((EmissionOperator(geom, torch.from_numpy(sc["multiplicative"])), sc))
    return out


def regions(truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import binary_dilation

    level = np.percentile(truth, 99.5)
    hot = truth >= 0.75 * level
    warm = (truth > 0.1 * level) & (truth < 0.3 * level) & ~binary_dilation(hot, iterations=3)
    return hot, warm


def metrics(rec: np.ndarray, truth: np.ndarray, ref: np.ndarray | None = None) -> dict:
    rng = float(truth.max())
    mse = float(np.mean((rec - truth) ** 2))
    hot, warm = regions(truth)
    m = {
        "PSNR": 10 * np.log10(rng**2 / mse),
        "SSIM": ssim(truth[None], rec[None], maxval=rng),
        "NRMSE": float(np.linalg.norm(rec - truth) / np.linalg.norm(truth)),
        "hot_bias": float(rec[hot].mean() / truth[hot].mean() - 1),
        "warm_bias": float(rec[warm].mean() / truth[warm].mean() - 1),
    }
    if ref is not None:
        d = float(np.mean((rec - ref) ** 2))
        m["PSNR_full"] = 10 * np.log10(rng**2 / d) if d > 0 else float("inf")  # inf: the reference itself
        m["SSIM_full"] = ssim(ref[None], rec[None], maxval=rng)
    return m


# around the defaults (the measured best; docs/results/pet.md has every setting tried)
DENOISE_GRID = [{}, {"samples": 1}, {"samples": 1, "dc_lam": 10.0}, {"samples": 1, "start": 0.1}]
DIFFUSION_GRID = [
    {},
    {"samples": 1},
    {"samples": 1, "dc_lam": 0.1},
    {"samples": 1, "start": 0.02},
    {"samples": 1, "init": "osem", "start": 0.05},
]


def recon(method: str, op, sc, param, pixel_mm: float, guide=None) -> np.ndarray:
    y, r = torch.from_numpy(sc["counts"]), torch.from_numpy(sc["background"])
    if method == "diffusion":  # param: (denoiser, PETDiffusionConfig)
        denoiser, cfg = param
        g = torch.from_numpy(guide) if guide is not None else None
        mean, _ = reconstruct_slices(op, y, r, g, denoiser, cfg, torch.Generator().manual_seed(cfg.seed))
        return mean[0].numpy()
    if method == "denoise":  # image domain: the unfiltered OSEM image denoised (param: denoiser, PETDenoiseConfig)
        denoiser, cfg = param
        low = osem(op, y, r, OSEM_ITERS, SUBSETS)
        mean, _ = denoise_slices(low, torch.from_numpy(guide), denoiser, cfg, torch.Generator().manual_seed(cfg.seed))
        return mean[0].numpy()
    if method == "osem":
        return gaussian_postfilter(osem(op, y, r, OSEM_ITERS, SUBSETS), param, pixel_mm)[0].numpy()
    return map_em_rdp(op, y, r, param, iterations=MAP_ITERS, subsets=SUBSETS)[0].numpy()


def tune(images, counts: float) -> dict:
    best = {}
    data = scans(images, counts, seed=100)
    for method, grid in (("osem", FWHM_GRID), ("mapem", BETA_GRID)):
        scores = []
        for p in grid:
            vals = [metrics(recon(method, op, sc, p, im.pixel_mm), sc["scaled_activity"][0])["NRMSE"] for (op, sc), im in zip(data, images)]
            scores.append(float(np.mean(vals)))
            print(f"  tune {counts:.3g} {method} {p}: NRMSE {scores[-1]:.4f}", flush=True)
        best[method] = grid[int(np.argmin(scores))]
    return best


def _settings(pairs: list[str]) -> dict:
    """``KEY=VALUE`` options → settings (numbers, lists and objects as JSON, the rest as strings)."""
    return {k: json.loads(v) if v[:1] in "0123456789-[{" else v for k, v in (p.split("=", 1) for p in pairs)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", default=None, help="a PET prior: add diffusion rows (unguided, CT-guided) instead of tuning baselines")
    ap.add_argument("--tune-diffusion", action="store_true", help="score DIFFUSION_GRID at 1/10 dose on the tuning slices and stop")
    ap.add_argument("--retune", action="store_true", help="choose FWHM and β again (else pet_tuning.json's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a PETDiffusionConfig setting")
    ap.add_argument("--set-denoise", action="append", default=[], metavar="KEY=VALUE", help="a PETDenoiseConfig setting")
    args = ap.parse_args()
    torch.manual_seed(0)
    train, test = load(TUNE), load(HELD_OUT)
    levels = [("full", 1.0)] + [(f"1/{round(1 / f)}", f) for f in DOSE_FRACTIONS]
    if args.retune or not (RESULTS / "pet_tuning.json").exists():
        tuning = {}
        for name, frac in levels:
            tuning[name] = tune(train, FULL_COUNTS * frac)
            print(name, tuning[name], flush=True)
        (RESULTS / "pet_tuning.json").write_text(json.dumps(tuning, indent=1) + "\n")
    tuning = json.loads((RESULTS / "pet_tuning.json").read_text())
    base = _settings(args.set)
    denoise_base = _settings(args.set_denoise)
    denoiser = None if args.prior is None else load_prior(args.prior)
    if args.tune_diffusion:
        data = scans(train, FULL_COUNTS / 10, seed=100)
        grids = (
            ("sinogram", "diffusion", PETDiffusionConfig, base, DIFFUSION_GRID),
            ("image domain", "denoise", PETDenoiseConfig, denoise_base, DENOISE_GRID),
        )
        for mode, kind, cls, defaults, grid in grids:
            for setting in grid:
                cfg = cls(**{**defaults, **setting})
                t0 = time.perf_counter()
                ms = [
                    metrics(recon(kind, op, sc, (denoiser, cfg), im.pixel_mm, im.guide_hu), sc["scaled_activity"][0])
                    for (op, sc), im in zip(data, train)
                ]
                avg = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
                print(
                    f"{mode} {setting}: NRMSE {avg['NRMSE']:.4f} PSNR {avg['PSNR']:.2f} SSIM {avg['SSIM']:.3f} "
                    f"hot {100 * avg['hot_bias']:+.1f} % | {(time.perf_counter() - t0) / len(train):.1f} s",
                    flush=True,
                )
        return
    full = scans(test, FULL_COUNTS, seed=0)
    refs = [recon("osem", op, sc, tuning["full"]["osem"], im.pixel_mm) for (op, sc), im in zip(full, test)]
    steps = denoiser.info.get("training_steps") if denoiser is not None else None
    lines = [
        "Real FDG NAC-PET slices (PET_AC_sCT, research use), held out: part 4 slices 0, 3, 6, 9; low-count data SIMULATED "
        f"from them (emission model of `simulate pet`, 30 % background, full = {FULL_COUNTS:.0e} prompts per slice). "
        f"OSEM {OSEM_ITERS} it x {SUBSETS} subsets + Gaussian; MAP-EM = BSREM {MAP_ITERS} it x {SUBSETS} subsets with RDP (γ 2). "
        "FWHM and β chosen per level on 4 training slices (min NRMSE; pet_tuning.json). Mean over the 4 slices; "
        "'vs full' = against the full-count OSEM image; 2 CPU cores."
        + (
            f" Diffusion: prior `{args.prior}` ({steps} training steps, parts 1-3), settings {json.dumps(base) or 'PETDiffusionConfig defaults'}."
            if denoiser
            else ""
        )
        + "\n",
        "| dose | method | PSNR dB | SSIM | NRMSE | PSNR vs full | SSIM vs full | hot bias % | warm bias % | s / slice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    methods = [("osem", "OSEM + Gaussian {p:g} mm"), ("mapem", "MAP-EM RDP β {p:g}")]
    if denoiser is not None:
        methods += [
            ("unguided", "diffusion, unguided"),
            ("guided", "diffusion, CT-guided"),
            ("denoise", "diffusion, image domain (OSEM in), CT-guided"),
        ]
    for name, frac in levels:
        data = full if frac == 1.0 else scans(test, FULL_COUNTS * frac, seed=0)
        for method, label in methods:
            p = tuning[name].get(method)
            if method in ("unguided", "guided"):
                p = (denoiser, PETDiffusionConfig(**{**base, "guide": "ct" if method == "guided" else "none"}))
            if method == "denoise":
                p = (denoiser, PETDenoiseConfig(**denoise_base))
            t0 = time.perf_counter()
            kind = method if method in ("osem", "mapem", "denoise") else "diffusion"
            recs = [recon(kind, op, sc, p, im.pixel_mm, im.guide_hu) for (op, sc), im in zip(data, test)]
            dt = (time.perf_counter() - t0) / len(test)
            # the full-count reference on this scan's scale (each scan has its own calibration)
            ms = [
                metrics(rc, sc["scaled_activity"][0], rf * fsc["calibration"][0] / sc["calibration"][0])
                for rc, (_, sc), rf, (_, fsc) in zip(recs, data, refs, full)
            ]
            avg = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
            lines.append(
                f"| {name} | {label.format(p=p) if kind in ('osem', 'mapem') else label} | {avg['PSNR']:.2f} | {avg['SSIM']:.3f} | {avg['NRMSE']:.3f} | "
                f"{'–' if name == 'full' and method == 'osem' else format(avg['PSNR_full'], '.2f')} | {avg['SSIM_full']:.3f} | {100 * avg['hot_bias']:+.1f} | {100 * avg['warm_bias']:+.1f} | {dt:.1f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    (RESULTS / ("pet_baselines.md" if denoiser is None else "pet_diffusion.md")).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
