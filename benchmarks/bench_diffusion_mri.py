"""Diffusion (DDS) reconstruction of the real 8-coil head against L1-wavelet CS.

Run:  python benchmarks/bench_diffusion_mri.py [--train-steps N] [--prior DIR] [--device cuda]
          [--samples 1,4] [--no-cs] [--steps-sweep 10,20,50,100,1000] [--out results/NAME.md]
Writes benchmarks/results/diffusion_mri.md (or --out).

1. Prior: trained here on ``siat_brain_complex_train.npz`` (180 real complex brain images,
   research use: the prior is a benchmark artefact, never shipped) for ``--train-steps`` steps,
   or loaded from ``--prior``. The number of training steps is printed with every result.
2. ``head_8coil_kspace.npz`` at 4× and 8× equispaced (centre 0.08 / 0.04), seeds 0–2: DDS
   (DDIM η = 0.85 + 5 CG iterations, 50 network evaluations per sample; the mean of 1 and of
   --samples posterior samples) and CS (λ = 3e-4, tuned on
   a SIAT image by bench_mri_real.py); ESPIRiT maps from the undersampled data.
3. Quality against the number of steps (8×, seed 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from medrecon.diffusion.training import TrainConfig, load_prior, normalise_images, train_prior
from medrecon.evaluation.metrics import volume_metrics
from medrecon.physics.fft import ifftc
from medrecon.physics.mri.coils import espirit_maps, rss
from medrecon.physics.mri.masks import line_mask
from medrecon.recon.classical import cs_l1_wavelet
from medrecon.recon.diffusion_mri import DiffusionConfig, reconstruct_slice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri"
SETTINGS = ((4, 0.08), (8, 0.04))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--prior", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps-sweep", default="10,20,50,100")
    ap.add_argument("--samples", default="1", help="comma-separated numbers of posterior samples to average")
    ap.add_argument("--no-cs", action="store_true", help="skip CS (e.g. on a GPU machine: CS numbers come from the CPU run)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "diffusion_mri.md"))
    ap.add_argument("--data", default=str(DATA), help="folder with head_8coil_kspace.npz (and the SIAT npz to train)")
    args = ap.parse_args()
    data = Path(args.data)
    dev = args.device
    if dev.startswith("cuda"):  # as the CLI does: TF32 on (cuDNN picks far slower kernels without it)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.prior is None:
        imgs = normalise_images(torch.from_numpy(np.load(data / "siat_brain_complex_train.npz")["images"]))
        out = Path(__file__).parent / "results" / "siat_prior"
        cfg = TrainConfig(objective="ddpm", steps=args.train_steps, batch_size=8, crop=64, lr=2e-4, checkpoint_every=max(args.train_steps, 1))
        t0 = time.perf_counter()
        train_prior(imgs, cfg, out, dict(channels=(32, 64, 64), attention_levels=(False, False, True)),
                    data_description="SIAT 180 complex brain images (benchmark only)", device=dev)
        print(f"trained {args.train_steps} steps in {time.perf_counter() - t0:.0f} s")
        prior_dir = out
    else:
        prior_dir = Path(args.prior)
    d = load_prior(prior_dir, device=dev)
    n_train = d.info["training_steps"]
    k = torch.from_numpy(np.load(data / "head_8coil_kspace.npz")["kspace"]).to(dev)
    gt = rss(ifftc(k), 0)[None].cpu().numpy()
    lines = [
        f"Real 8-coil head, DDS (DDIM η 0.85, 5 CG it.) vs CS (λ 3e-4); prior trained {n_train} steps on {d.info.get('data', '?')} "
        f"(device {dev}); mean ± std over seeds 0–2.\n",
        "| R | method | NFE | PSNR dB | SSIM | s / slice |",
        "|---|---|---|---|---|---|",
    ]
    n_samples = [int(v) for v in args.samples.split(",")]
    for acc, cf in SETTINGS:
        res: dict[str, list] = {} if args.no_cs else {"CS": []}
        res.update({f"DDS ×{n}": [] for n in n_samples})
        for seed in (0, 1, 2):
            lm = line_mask("equispaced_fraction", k.shape[-1], cf, acc, seed)
            mask = torch.from_numpy(lm.mask)[None, None, None].to(dev)
            ku = k * mask[0]
            maps = espirit_maps(ku)
            if not args.no_cs:
                t0 = time.perf_counter()
                cs = cs_l1_wavelet(ku[None], maps[None], mask, lam=3e-4)[0].abs().cpu().numpy()
                t_cs = time.perf_counter() - t0
                m = volume_metrics(gt, cs[None])
                res["CS"].append((m["PSNR"], m["SSIM"], t_cs))
            for n in n_samples:
                t0 = time.perf_counter()
                mean, _ = reconstruct_slice(ku, maps, mask, d, DiffusionConfig(steps=50, samples=n, seed=seed), torch.Generator().manual_seed(seed))
                if dev != "cpu":
                    torch.cuda.synchronize()
                t_d = time.perf_counter() - t0
                m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
                res[f"DDS ×{n}"].append((m["PSNR"], m["SSIM"], t_d))
        for name, v in res.items():
            v = np.array(v)
            nfe = f"{50 * int(name.split('×')[1])}" if name.startswith("DDS") else "–"
            label = "DDS, mean of " + name.split("×")[1] + " samples" if name.startswith("DDS") else name
            lines.append(f"| {acc}× | {label} | {nfe} | {v[:, 0].mean():.2f} ± {v[:, 0].std():.2f} | {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} | {v[:, 2].mean():.1f} |")
            print(lines[-1], flush=True)
    lines += ["", f"Quality against steps (8×, seed 0, prior {n_train} steps):\n", "| steps (NFE) | PSNR dB | SSIM | s / slice |", "|---|---|---|---|"]
    lm = line_mask("equispaced_fraction", k.shape[-1], 0.04, 8, 0)
    mask = torch.from_numpy(lm.mask)[None, None, None].to(dev)
    ku = k * mask[0]
    maps = espirit_maps(ku)
    for steps in [int(s) for s in args.steps_sweep.split(",")]:
        t0 = time.perf_counter()
        mean, _ = reconstruct_slice(ku, maps, mask, d, DiffusionConfig(steps=steps), torch.Generator().manual_seed(0))
        if dev != "cpu":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
        lines.append(f"| {steps} | {m['PSNR']:.2f} | {m['SSIM']:.3f} | {dt:.1f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
