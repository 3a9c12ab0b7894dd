"""Seconds per slice of DDS sampling on a fastMRI-sized volume (320², 15 coils), slices batched.

Run:  python benchmarks/bench_diffusion_speed.py --prior DIR [--device cuda] [--batches 1,4,16] [--slices 16]
Writes benchmarks/results/diffusion_speed_<device>.md.

Synthetic 15-coil k-space (smooth Gaussian coil profiles around the object × a disk), 4× equispaced mask; the
coil maps are given (ESPIRiT excluded: this times the sampler). DDS = DDIM η 0.85 + 5 CG
iterations per step, 50 network evaluations per slice. Speed only: the image content does not
matter, any prior of the right channel count will do.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.physics.fft import fftc
    from medrecon.physics.mri.masks import line_mask
    from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slices

    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--slices", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    dev = args.device
    if dev.startswith("cuda"):  # as the CLI does: TF32 on (cuDNN picks far slower kernels without it)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    d = load_prior(args.prior, device=dev)
    yy, xx = np.mgrid[:320, :320] - 159.5
    ang = 2 * np.pi * np.arange(15) / 15
    prof = np.exp(-((xx - 150 * np.cos(ang)[:, None, None]) ** 2 + (yy - 150 * np.sin(ang)[:, None, None]) ** 2) / (2 * 120.0**2))
    prof = prof * np.exp(1j * ang[:, None, None])
    maps = torch.from_numpy((prof / np.sqrt((np.abs(prof) ** 2).sum(0))).astype(np.complex64)).to(dev)
    img = torch.from_numpy(((xx**2 + (yy / 1.3) ** 2) < 110**2).astype(np.complex64)).to(dev)
    k = fftc(maps * img)
    mask = torch.from_numpy(line_mask("equispaced_fraction", 320, 0.08, 4, 0).mask)[None, None, None].to(dev)
    ku = (k * mask[0])[None].expand(args.slices, -1, -1, -1).contiguous()
    mp = maps[None].expand(args.slices, -1, -1, -1).contiguous()
    cfg = DiffusionConfig(steps=args.steps)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
    lines = [
        f"DDS {args.steps} NFE per slice, 320² × 15 coils, {args.slices} slices, {name}, prior {d.info.get('prior', {}).get('channels')}\n",
        "| slices per batch | s / slice | s / volume of 16 slices | peak GPU GiB |",
        "|---|---|---|---|",
    ]
    with torch.no_grad():
        reconstruct_slices(ku[:1], mp[:1], mask, d, DiffusionConfig(steps=2), torch.Generator().manual_seed(0))  # warm-up
        for b in [int(v) for v in args.batches.split(",")]:
            if dev.startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            sync()
            t0 = time.perf_counter()
            for s0 in range(0, args.slices, b):
                reconstruct_slices(ku[s0 : s0 + b], mp[s0 : s0 + b], mask, d, cfg, torch.Generator().manual_seed(0))
            sync()
            per = (time.perf_counter() - t0) / args.slices
            peak = torch.cuda.max_memory_allocated() / 2**30 if dev.startswith("cuda") else float("nan")
            lines.append(f"| {b} | {per:.3f} | {16 * per:.1f} | {peak:.1f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    (Path(__file__).parent / "results" / f"diffusion_speed_{dev.split(':')[0]}.md").write_text(text)


if __name__ == "__main__":
    main()
