"""Slice-to-slice consistency of diffusion CT volumes: slices sampled independently vs coupled along z.

Run:  python benchmarks/bench_ct_volume.py --prior medrecon/priors/ct [--couplings 0,0.01] [--batch-slices 4 --anchor both] [--set steps=10 ...]
Writes benchmarks/results/ct_volume.md (``--out``) and a sagittal reformat figure beside it (``*_reformat.png``).

Data: the 20-slice abdominal series ``ct/totalseg_abdomen_ct_dicom`` (3 mm slices; slices 8-11 are
held out of the CT prior's training, the others were seen in training), each slice scanned over a
90° parallel-beam arc with 90 views at 1e5 photons per bin (bench_ct_real.py's simulation, noise
seed 1). All 20 slices are sampled in one batch (or in batches of ``--batch-slices``, each batch's
first slice anchored to the batch before or not), with the same seed, ``z_coupling = 0``
(independent slices) and ``> 0`` (a slice-difference penalty inside every CG step). Flicker is the mean absolute
error of the z-derivative over the body, ``|Δz recon − Δz target|`` in HU, i.e. what shows as
stripes across a sagittal or coronal reformat.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_ct_real import DATA, scan

from medrecon.config import parse_set_options
from medrecon.datasets.ct_volume import read_ct
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.ct_metrics import body_mask, hu_metrics, z_flicker
from medrecon.tasks.ct.config import CTDiffusionConfig
from medrecon.tasks.ct.diffusion import check_prior_for_ct, initial_estimate_hu, reconstruct_slices, reconstruct_volume

HELD_OUT = (8, 12)  # slices 8-11 of the series are held out of the shipped CT prior's training


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prior", required=True)
    ap.add_argument("--couplings", default="0,0.01", help="comma-separated z_coupling weights, one run each (0: independent slices)")
    ap.add_argument("--batch-slices", type=int, default=0, help="slices sampled together (0: all 20 in one batch)")
    ap.add_argument(
        "--anchor",
        choices=["yes", "no", "both"],
        default="yes",
        help="couple each batch's first slice to the batch before (with --batch-slices)",
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a CTDiffusionConfig setting (repeatable)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "ct_volume.md"))
    args = ap.parse_args()
    denoiser = load_prior(args.prior)
    base = parse_set_options(args.set)
    target = read_ct(DATA).hu
    body = body_mask(target)
    geom, _, y = scan(target, 90.0, 90, seed=1)
    results = {}
    first = CTDiffusionConfig(**base)
    t0 = time.perf_counter()
    init = initial_estimate_hu(y, geom, first) if first.start < 1 else None  # the same warm start for every run
    init_s = (time.perf_counter() - t0) / target.shape[0]
    batch = args.batch_slices or target.shape[0]
    for weight in [float(w) for w in args.couplings.split(",")]:
        for anchored in [True, False] if args.anchor == "both" else [args.anchor == "yes"]:
            cfg = CTDiffusionConfig(**{**base, "z_coupling": weight, "batch_slices": batch})
            check_prior_for_ct(denoiser, geom, cfg, "benchmark")
            label = "independent slices" if weight == 0 else f"coupled along z ({weight:g})"
            if batch < target.shape[0] and weight > 0:
                label += f", batches of {batch}" + (", each anchored to the batch before" if anchored else ", batches independent")
            t0 = time.perf_counter()
            if anchored:
                mean, _ = reconstruct_volume(y.numpy(), geom, denoiser, cfg, initial_hu=None if init is None else init.numpy())
            else:  # batches without the anchor: each batch's first slice is free of the batch before
                g = torch.Generator().manual_seed(cfg.seed)
                parts = [
                    reconstruct_slices(
                        y[a : a + batch], geom, denoiser, cfg, g, initial_hu=None if init is None else init[a : a + batch]
                    ).mean
                    for a in range(0, target.shape[0], batch)
                ]
                mean = torch.cat(parts).numpy()
            dt = (time.perf_counter() - t0) / target.shape[0] + init_s
            results[label] = (mean, dt)
            print(label, f"{dt:.0f} s/slice", flush=True)
            if weight == 0:
                break  # anchoring needs a coupling
    lines = [
        f"Prior `{args.prior}` ({denoiser.info.get('training_steps')} training steps); 20-slice real abdominal series (3 mm), 90° / 90 views, "
        f"1e5 photons/bin; settings {json.dumps(base) if base else 'defaults'}; "
        f"{'all slices in one batch' if batch == target.shape[0] else f'batches of {batch} slices'}; 2 CPU cores.\n",
        "| slices | flicker HU (body) | at batch boundaries | PSNR dB | SSIM | body MAE HU | held-out 8-11: PSNR dB / body MAE HU | s / slice |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, (hu, dt) in results.items():
        m, b = hu_metrics(target, hu), hu_metrics(target, hu, mask=body)
        ho = slice(*HELD_OUT)
        hm, hb = hu_metrics(target[ho], hu[ho]), hu_metrics(target[ho], hu[ho], mask=body[ho])
        edges = [z_flicker(hu[b - 1 : b + 1], target[b - 1 : b + 1], body[b - 1 : b + 1]) for b in range(batch, target.shape[0], batch)]
        lines.append(
            f"| {label} | {z_flicker(hu, target, body):.1f} | {f'{np.mean(edges):.1f}' if edges else '–'} | {m['PSNR']:.2f} | {m['SSIM']:.3f} | {b['MAE_HU']:.1f} "
            f"| {hm['PSNR']:.2f} / {hb['MAE_HU']:.1f} | {dt:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    out = Path(args.out)
    _figure([("target", target)] + [(k, v[0]) for k, v in results.items()], out.with_name(f"{out.stem}_reformat.png"))


def _figure(panels: list[tuple[str, np.ndarray]], path: Path) -> None:
    """Sagittal reformats (through the image centre, 3 mm slices stretched to scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 2.2 * len(panels)))
    for ax, (title, vol) in zip(axes, panels):
        ax.imshow(vol[::-1, :, vol.shape[2] // 2], cmap="gray", vmin=-200, vmax=300, aspect=3.0 / 0.977)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
