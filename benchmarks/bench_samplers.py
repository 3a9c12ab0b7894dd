"""Seconds per slice and network evaluations for each sampler / data-consistency pair (8×, real head).

Run:  python benchmarks/bench_samplers.py --prior DIR [--device cuda]
Writes benchmarks/results/samplers.md. The prior is a DDPM prior (e.g. the shipped one,
medrecon/priors/brain); VE predictor–corrector needs a score prior and is listed only when
``--score-prior`` is given (configs/mri_brain_score.yaml trains one on this CPU). Warm-started
DDS rows start from the CS estimate at 0.1 of the schedule (the level bench_diffusion_mri.py
tuned for 8× on a SIAT image).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.metrics import volume_metrics
from medrecon.physics.fft import ifftc
from medrecon.physics.mri.coils import espirit_maps, rss
from medrecon.physics.mri.masks import line_mask
from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", required=True)
    ap.add_argument("--score-prior", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    dev = args.device
    k = torch.from_numpy(np.load(Path(args.data) / "head_8coil_kspace.npz")["kspace"]).to(dev)
    gt = rss(ifftc(k), 0)[None].cpu().numpy()
    lm = line_mask("equispaced_fraction", 256, 0.04, 8, 0)
    mask = torch.from_numpy(lm.mask)[None, None, None].to(dev)
    ku = k * mask[0]
    maps = espirit_maps(ku)
    runs = [
        (args.prior, DiffusionConfig(sampler="dds", steps=50)),
        (args.prior, DiffusionConfig(sampler="ddim", steps=50, eta=0.0, dc="grad")),
        (args.prior, DiffusionConfig(sampler="ddpm", steps=100, dc="cg")),
        (args.prior, DiffusionConfig(sampler="dds", steps=50, samples=4)),
        (args.prior, DiffusionConfig(sampler="dds", steps=20, start=0.1, init="cs")),
        (args.prior, DiffusionConfig(sampler="dds", steps=20, samples=4, start=0.1, init="cs")),
    ]
    if args.score_prior:
        runs.append((args.score_prior, DiffusionConfig(sampler="ve_pc", steps=100, dc="cg")))
    d_cache: dict[str, object] = {}
    lines = [
        "| prior (training steps) | sampler | DC | start | steps | samples | NFE | PSNR dB | SSIM | s / slice |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for prior, cfg in runs:
        d = d_cache.setdefault(prior, load_prior(prior, device=dev))
        t0 = time.perf_counter()
        mean, _ = reconstruct_slice(ku, maps, mask, d, cfg, torch.Generator().manual_seed(0))
        dt = time.perf_counter() - t0
        m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
        nfe = cfg.steps * (2 if cfg.sampler == "ve_pc" else 1)
        start = "noise" if cfg.start == 1 else f"{cfg.init} at {cfg.start}"
        kind = "score" if cfg.sampler == "ve_pc" else "DDPM"
        lines.append(
            f"| {kind} ({d.info['training_steps']}) | {cfg.sampler} | {cfg.dc} | {start} | {cfg.steps} | {cfg.samples} | {nfe * cfg.samples} | "
            f"{m['PSNR']:.2f} | {m['SSIM']:.3f} | {dt:.1f} |"
        )
        print(lines[-1], flush=True)
    text = (
        f"8× equispaced, real 8-coil head, seed 0, device {dev}; NFE = network evaluations in all "
        f"(samples × steps, ×2 for VE-PC: one corrector per predictor step).\n\n" + "\n".join(lines) + "\n"
    )
    print(text)
    (Path(__file__).parent / "results" / "samplers.md").write_text(text)


if __name__ == "__main__":
    main()
