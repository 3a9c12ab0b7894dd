"""``medrecon demo``: reconstruct the embedded real MR slice at 4× and 8×, print metrics, save a figure."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .datasets.atomic import atomic_output
from .datasets.demo_data import demo_slice
from .evaluation.metrics import volume_metrics
from .physics.fft import ifftc
from .physics.mri.coils import espirit_maps, rss
from .physics.mri.masks import line_mask
from .recon.classical import cg_sense, cs_l1_wavelet, zero_filled
from .recon.pipeline import DEFAULT_LAM

SETTINGS = ((4, 0.08), (8, 0.04))  # fastMRI's standard (acceleration, centre fraction) pairs


def run_demo(out_dir: str | Path = "demo_output", seed: int = 0, print_fn=print) -> dict[str, dict[str, float]]:
    """Run the demo; returns ``{"<R>x <method>": {"PSNR":..,"SSIM":..,"NMSE":..,"seconds":..}}``.

    Writes ``<out_dir>/comparison.png`` (a missing ``out_dir`` is created: it is the demo's own).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = demo_slice(seed=seed)
    k = data.kspace
    target = rss(ifftc(k), dim=0)[None].numpy()
    print_fn(f"medrecon demo: {data.source}, {k.shape[0]} simulated coils, {k.shape[1]}x{k.shape[2]}, {data.pixel_mm:.2f} mm")
    results: dict[str, dict[str, float]] = {}
    images: dict[str, np.ndarray] = {"reference (fully sampled RSS)": target[0]}
    for acc, cf in SETTINGS:
        lm = line_mask("equispaced_fraction", k.shape[-1], cf, acc, seed)
        mask = torch.from_numpy(lm.mask)[None, None, None]
        ku = (k * mask[0])[None]
        t0 = time.perf_counter()
        maps = espirit_maps(ku[0])[None]
        t_maps = time.perf_counter() - t0
        for name, fn in (
            ("zf", lambda: zero_filled(ku)),
            ("sense", lambda: cg_sense(ku, maps, mask, lam=DEFAULT_LAM["sense"]).abs()),
            ("cs", lambda: cs_l1_wavelet(ku, maps, mask, lam=DEFAULT_LAM["cs"]).abs()),
        ):
            t0 = time.perf_counter()
            img = fn()[0].numpy()
            dt = time.perf_counter() - t0 + (t_maps if name != "zf" else 0.0)
            m = volume_metrics(target, img[None])
            m["seconds"] = dt
            results[f"{acc}x {name}"] = m
            images[f"{acc}x {name}"] = img
    print_fn(format_table(results))
    fig_path = out / "comparison.png"
    save_comparison(images, results, fig_path)
    print_fn(f"figure: {fig_path}")
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of metrics, one row per reconstruction."""
    lines = [f"{'recon':<12}{'PSNR dB':>9}{'SSIM':>8}{'NMSE':>9}{'time s':>8}"]
    for name, m in results.items():
        lines.append(f"{name:<12}{m['PSNR']:>9.2f}{m['SSIM']:>8.3f}{m['NMSE']:>9.4f}{m.get('seconds', float('nan')):>8.2f}")
    return "\n".join(lines)


def save_comparison(images: dict[str, np.ndarray], results: dict[str, dict[str, float]], path: Path) -> None:
    """Grid of images with PSNR / SSIM captions, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(images)
    ref = names[0]
    rows = 1 + (len(names) - 1 + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(9, 3.1 * rows))
    axes = np.atleast_2d(axes)
    vmax = float(np.percentile(images[ref], 99.5))
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(images[ref], cmap="gray", vmin=0, vmax=vmax)
    axes[0, 0].set_title(ref, fontsize=9)
    for i, name in enumerate(names[1:]):
        ax = axes[1 + i // 3, i % 3]
        ax.imshow(images[name], cmap="gray", vmin=0, vmax=vmax)
        m = results[name]
        ax.set_title(f"{name}: {m['PSNR']:.1f} dB / {m['SSIM']:.3f}", fontsize=9)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
