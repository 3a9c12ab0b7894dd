"""Diffusion (DDS) reconstruction of the real 8-coil head against L1-wavelet CS.

Run:  python benchmarks/bench_diffusion_mri.py [--train-steps N] [--prior DIR] [--device cuda]
          [--samples 1,4] [--no-cs] [--no-cold] [--warm-grid 0.02,0.05,0.1,0.2 | --warm 4:0.02,8:0.1]
          [--warm-steps 20] [--seeds 0,1,2] [--accels 4,8] [--sweep-only | --poisson-only]
          [--steps-sweep 10,20,50,100,1000 | --steps-sweep ""] [--out results/NAME.md]
Writes benchmarks/results/diffusion_mri.md (or --out) and, with the steps sweep, a plot of
quality against steps beside it (same name, .png).

1. Prior: trained here on ``siat_brain_complex_train.npz`` (180 real complex brain images,
   research use: the prior is a benchmark artefact, never shipped) for ``--train-steps`` steps,
   or loaded from ``--prior``. The number of training steps is printed with every result.
2. ``head_8coil_kspace.npz`` at 4× and 8× equispaced (centre 0.08 / 0.04), seeds 0–2: DDS
   (DDIM η = 0.85 + 5 CG iterations, 50 network evaluations per sample; the mean of 1 and of
   --samples posterior samples) and CS (λ = 3e-4, tuned on
   a SIAT image by bench_mri_real.py); ESPIRiT maps from the undersampled data.
   With ``--warm-grid``: DDS warm-started from the CS estimate (CCDF), its start level tuned per R
   on the SIAT image by PSNR.
3. Quality against the number of steps (8×, seed 0); ``--steps-sweep ""`` skips it.
4. ``--poisson-only``: instead of 2–3, the real prospectively Poisson-undersampled brain
   (``brain_8coil_poisson_kspace.npz``), where the mask is the scanner's.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from medrecon.diffusion.prior_folder import load_prior
from medrecon.diffusion.training import TrainConfig, normalise_images, phase_coherence, train_prior
from medrecon.evaluation.metrics import volume_metrics
from medrecon.physics.fft import ifftc
from medrecon.physics.mri.coils import espirit_maps, rss
from medrecon.physics.mri.masks import line_mask
from medrecon.tasks.mri.classical import cs_l1_wavelet
from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slice

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri"
SETTINGS = ((4, 0.08), (8, 0.04))
PHASE = "auto"  # --phase: DiffusionConfig.phase of every diffusion run


def _recon(ku: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor, d, cfg: DiffusionConfig, g: torch.Generator) -> tuple:
    """:func:`reconstruct_slice` with the ``--phase`` choice."""
    return reconstruct_slice(ku, maps, mask, d, replace(cfg, phase=PHASE), g)


def _undersample(k: torch.Tensor, acc: int, cf: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equispaced fastMRI mask ``(1, 1, 1, W)``, undersampled k-space and ESPIRiT maps from it."""
    lm = line_mask("equispaced_fraction", k.shape[-1], cf, acc, seed)
    mask = torch.from_numpy(lm.mask)[None, None, None].to(k.device)
    ku = k * mask[0]
    return mask, ku, espirit_maps(ku)


def _warm_starts(args: argparse.Namespace, d, log: list[str]) -> dict[int, float]:
    """Warm-start level per acceleration, chosen by PSNR on SIAT image #0 with 8 simulated coils
    (the image CS's weight was tuned on), seed 0, with the largest ``--samples``."""
    from bench_mri_real import tuning_slice

    k = tuning_slice().to(args.device)
    gt = rss(ifftc(k), 0)[None].cpu().numpy()
    n = max(int(v) for v in args.samples.split(","))
    best = {}
    for acc, cf in SETTINGS:
        mask, ku, maps = _undersample(k, acc, cf, 0)
        scores = {}
        for start in (float(v) for v in args.warm_grid.split(",")):
            cfg = DiffusionConfig(steps=min(args.warm_steps, d.schedule.max_steps(start)), samples=n, start=start, init="cs")
            mean, _ = _recon(ku, maps, mask, d, cfg, torch.Generator().manual_seed(0))
            m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
            scores[start] = m["PSNR"]
            log.append(f"- tuning, SIAT #0, {acc}×, start {start}: {m['PSNR']:.2f} dB / {m['SSIM']:.3f}")
            print(log[-1], flush=True)
        best[acc] = max(scores, key=scores.get)
    return best


def _calibration(gt: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[float, float]:
    """How well the posterior std ``(H, W)`` tracks the magnitude error of the mean, inside the head
    (reference above 5 % of its maximum): Spearman rank correlation, and the fraction of pixels
    whose error is within 2 std (≈ 95 % for a calibrated Gaussian posterior)."""
    from medrecon.evaluation.uncertainty import std_calibration

    inside = gt > 0.05 * gt.max()
    c = std_calibration(np.abs(mean - gt)[inside], std[inside])
    return c["std_error_spearman"], c["within_2std"]


def _phase_report(d, k: torch.Tensor, data: Path) -> str:
    """Phase coherence (:func:`phase_coherence`) of the prior's training data (as recorded), of the
    SIAT images (when present) and of the head combined with ESPIRiT maps from its full k-space."""
    maps = espirit_maps(k)
    head = (maps.conj() * ifftc(k)).sum(dim=0)
    parts = [f"prior's training data {d.info.get('phase_coherence', 'not recorded')}"]
    siat = data / "siat_brain_complex_train.npz"
    if siat.exists():
        parts.append(f"SIAT images {phase_coherence(torch.from_numpy(np.load(siat)['images'])):.2f}")
    parts.append(f"head, ESPIRiT-combined {phase_coherence(head[None].cpu()):.2f}")
    return "Phase coherence |Σx| / Σ|x|: " + ", ".join(parts) + "."


def _poisson_rows(data: Path, d, n_samples: list[int], warm8: float | None, warm_steps: int, dev: str) -> list[str]:
    """CS and DDS on the real prospectively Poisson-undersampled brain (R ≈ 7.9, one mask), scored
    against its 2-map ESPIRiT reference after least-squares scaling (as bench_mri_real.py does);
    diffusion seeds 0–2."""
    from bench_mri_real import ls_scaled_metrics, poisson_case

    k, ref, mask = poisson_case(data)
    k, mask = k.to(dev), mask.to(dev)
    maps = espirit_maps(k)

    def score(img: np.ndarray) -> tuple[float, float]:
        m = ls_scaled_metrics(ref, img)
        return m["PSNR"], m["SSIM"]

    n_train = d.info["training_steps"]
    lines = [
        f"Real prospectively Poisson-undersampled brain (`brain_8coil_poisson_kspace.npz`, R≈7.9), against its 2-map "
        f"ESPIRiT reference (least-squares scaled); prior trained {n_train} steps; diffusion seeds 0–2 (device {dev}).\n",
        "| method | NFE | PSNR dB | SSIM | s / slice |",
        "|---|---|---|---|---|",
    ]
    t0 = time.perf_counter()
    p, s_ = score(cs_l1_wavelet(k[None], maps[None], mask, lam=3e-4, iters=100)[0].abs().cpu().numpy())
    lines.append(f"| CS (λ 3e-4) | – | {p:.2f} | {s_:.3f} | {time.perf_counter() - t0:.1f} |")
    runs = {f"DDS, mean of {n}": (50 * n, DiffusionConfig(steps=50, samples=n)) for n in n_samples}
    if warm8 is not None:
        runs.update(
            {
                f"DDS from CS (start {warm8}, {warm_steps} steps), mean of {n}": (
                    warm_steps * n,
                    DiffusionConfig(steps=warm_steps, samples=n, start=warm8, init="cs"),
                )
                for n in n_samples
            }
        )
    for name, (nfe, cfg) in runs.items():
        v = []
        for seed in (0, 1, 2):
            t0 = time.perf_counter()
            mean, _ = _recon(k, maps, mask, d, replace(cfg, seed=seed), torch.Generator().manual_seed(seed))
            v.append((*score(mean.abs().cpu().numpy()), time.perf_counter() - t0))
        v = np.array(v)
        lines.append(
            f"| {name} | {nfe} | {v[:, 0].mean():.2f} ± {v[:, 0].std():.2f} | {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} | {v[:, 2].mean():.1f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--prior", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps-sweep", default="10,20,50,100")
    ap.add_argument("--samples", default="1", help="comma-separated numbers of posterior samples to average")
    ap.add_argument("--no-cs", action="store_true", help="skip CS (e.g. on a GPU machine: CS numbers come from the CPU run)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "diffusion_mri.md"))
    ap.add_argument("--no-cold", action="store_true", help="skip the 50-step DDS from pure noise")
    ap.add_argument("--warm-grid", default="", help="comma-separated warm-start levels to tune on the SIAT image (e.g. 0.02,0.05,0.1,0.2)")
    ap.add_argument("--warm-steps", type=int, default=20, help="steps of the warm-started chains")
    ap.add_argument("--warm", default="", help="warm-start levels per R without tuning, e.g. 4:0.02,8:0.1 (the tuned ones)")
    ap.add_argument("--sweep-only", action="store_true", help="only the quality-against-steps sweep")
    ap.add_argument("--seeds", default="0,1,2", help="mask (and sampling) seeds of the head table")
    ap.add_argument("--accels", default="4,8", help="accelerations of the head table (4 and/or 8)")
    ap.add_argument(
        "--poisson-only",
        action="store_true",
        help="only the real prospectively Poisson-undersampled brain (brain_8coil_poisson_kspace.npz)",
    )
    ap.add_argument(
        "--phase",
        default="auto",
        choices=("auto", "demodulate", "keep"),
        help="smooth-phase demodulation (DiffusionConfig.phase); auto follows the prior's phase_coherence",
    )
    ap.add_argument("--data", default=str(DATA), help="folder with head_8coil_kspace.npz (and the SIAT npz to train)")
    args = ap.parse_args()
    global PHASE
    PHASE = args.phase
    data = Path(args.data)
    dev = args.device
    if dev.startswith("cuda"):  # as the CLI does: TF32 on (cuDNN picks far slower kernels without it)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.prior is None:
        imgs = normalise_images(torch.from_numpy(np.load(data / "siat_brain_complex_train.npz")["images"]))
        out = Path(__file__).parent / "results" / "siat_prior"
        cfg = TrainConfig(
            objective="ddpm", steps=args.train_steps, batch_size=8, crop=64, lr=2e-4, checkpoint_every=max(args.train_steps, 1)
        )
        t0 = time.perf_counter()
        train_prior(
            imgs,
            cfg,
            out,
            dict(channels=(32, 64, 64), attention_levels=(False, False, True)),
            data_description="SIAT 180 complex brain images (benchmark only)",
            device=dev,
        )
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
        f"(device {dev}); smooth phase {PHASE}; mean ± std over seeds {args.seeds}.\n",
        _phase_report(d, k, data) + "\n",
        "| R | method | NFE | PSNR dB | SSIM | s / slice |",
        "|---|---|---|---|---|---|",
    ]
    n_samples = [int(v) for v in args.samples.split(",")]
    seeds = [int(v) for v in args.seeds.split(",")]
    settings = [(a, cf) for a, cf in SETTINGS if str(a) in args.accels.split(",")]
    details: list[str] = []  # tuning scores and per-seed values, written below the table
    if args.warm:
        warm = {int(r): float(v) for r, v in (kv.split(":") for kv in args.warm.split(","))}
    else:
        warm = _warm_starts(args, d, details) if args.warm_grid else {}
    if args.poisson_only:
        text = "\n".join(_poisson_rows(data, d, n_samples, warm.get(8), args.warm_steps, dev)) + "\n"
        print(text)
        Path(args.out).write_text(text)
        return
    if warm:
        how = "given" if args.warm else f"tuned by PSNR on SIAT image #0 with 8 simulated coils (seed 0, mean of {max(n_samples)})"
        lines.insert(
            1, f"Warm start (CCDF): DDS from the CS estimate diffused to `start`, {args.warm_steps} steps; `start` per R {how}: {warm}.\n"
        )
    for acc, cf in () if args.sweep_only else settings:
        res: dict[str, list] = {} if args.no_cs else {"CS": []}
        runs = {} if args.no_cold else {f"DDS, mean of {n} samples": (50 * n, DiffusionConfig(steps=50, samples=n)) for n in n_samples}
        if warm:
            runs.update(
                {
                    f"DDS from CS (start {warm[acc]}, {args.warm_steps} steps), mean of {n}": (
                        args.warm_steps * n,
                        DiffusionConfig(steps=args.warm_steps, samples=n, start=warm[acc], init="cs"),
                    )
                    for n in n_samples
                }
            )
        res.update({name: [] for name in runs})
        for seed in seeds:
            mask, ku, maps = _undersample(k, acc, cf, seed)
            if not args.no_cs:
                t0 = time.perf_counter()
                cs = cs_l1_wavelet(ku[None], maps[None], mask, lam=3e-4, iters=100)[0].abs().cpu().numpy()
                t_cs = time.perf_counter() - t0
                m = volume_metrics(gt, cs[None])
                res["CS"].append((m["PSNR"], m["SSIM"], t_cs))
            for name, (_, cfg) in runs.items():
                t0 = time.perf_counter()
                cfg = replace(cfg, seed=seed)
                mean, std = _recon(ku, maps, mask, d, cfg, torch.Generator().manual_seed(seed))
                if dev != "cpu":
                    torch.cuda.synchronize()
                t_d = time.perf_counter() - t0
                m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
                res[name].append((m["PSNR"], m["SSIM"], t_d))
                if cfg.samples > 1:
                    rho, cover = _calibration(gt[0], mean.abs().cpu().numpy(), std.cpu().numpy())
                    details.append(
                        f"- {acc}× {name}, seed {seed}: uncertainty — Spearman ρ(std, |error|) {rho:.2f} inside the head, "
                        f"|error| ≤ 2·std on {100 * cover:.0f} % of its pixels"
                    )
        for name, v in res.items():
            v = np.array(v)
            nfe = f"{runs[name][0]}" if name in runs else "–"
            lines.append(
                f"| {acc}× | {name} | {nfe} | {v[:, 0].mean():.2f} ± {v[:, 0].std():.2f} | {v[:, 1].mean():.3f} ± {v[:, 1].std():.3f} | {v[:, 2].mean():.1f} |"
            )
            print(lines[-1], flush=True)
            details.append(f"- {acc}× {name}, per seed {seeds}: " + ", ".join(f"{p:.2f} / {q:.3f}" for p, q, _ in v))
    if details:
        lines += ["", *details]
    if not args.steps_sweep:
        text = "\n".join(lines) + "\n"
        print(text)
        Path(args.out).write_text(text)
        return
    sweep = [int(v) for v in args.steps_sweep.split(",")]
    lines += [
        "",
        f"Quality against steps (8×, seed 0, 1 sample, prior {n_train} steps):\n",
        "| chain | steps (NFE) | PSNR dB | SSIM | s / slice |",
        "|---|---|---|---|---|",
    ]
    mask, ku, maps = _undersample(k, 8, 0.04, 0)
    chains = {"from noise": DiffusionConfig()}
    if warm:
        chains[f"from CS at {warm[8]}"] = DiffusionConfig(start=warm[8], init="cs")
    curves: dict[str, list[tuple[int, float, float]]] = {}
    for name, base in chains.items():
        for steps in sweep:
            if steps > d.schedule.max_steps(base.start):
                continue  # a chain started at t0 has at most t0 + 1 steps
            t0 = time.perf_counter()
            mean, _ = _recon(ku, maps, mask, d, replace(base, steps=steps), torch.Generator().manual_seed(0))
            if dev != "cpu":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            m = volume_metrics(gt, mean.abs().cpu().numpy()[None])
            curves.setdefault(name, []).append((steps, m["PSNR"], m["SSIM"]))
            lines.append(f"| {name} | {steps} | {m['PSNR']:.2f} | {m['SSIM']:.3f} | {dt:.1f} |")
            print(lines[-1], flush=True)
    _plot_steps(curves, Path(args.out).with_suffix(".png"), f"8×, real head, prior {n_train} steps (device {dev})")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


def _plot_steps(curves: dict[str, list[tuple[int, float, float]]], path: Path, title: str) -> None:
    """PSNR and SSIM against the number of steps, one line per chain, log-scaled steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, pts in curves.items():
        st, ps, ss = zip(*pts)
        axes[0].plot(st, ps, "o-", label=name)
        axes[1].plot(st, ss, "o-", label=name)
    for ax, lab in zip(axes, ("PSNR (dB)", "SSIM")):
        ax.set_xscale("log")
        ax.set_xlabel("steps (network evaluations)")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
