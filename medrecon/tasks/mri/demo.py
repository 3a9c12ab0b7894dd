"""``medrecon demo``: reconstruct the embedded real MR slice at 4× and 8×, print metrics, save a figure.

Part 1: the abdominal slice from pydicom-data, zero filling / CG-SENSE / L1-wavelet CS at 4× and 8×.
Part 2 (unless ``diffusion=False``): a brain slice shipped beside the brain prior at 4×, zero
filling and CS against DDS with the shipped prior (mean of ``samples`` posterior samples) and its
per-pixel standard deviation (the uncertainty map).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ...atomic import atomic_output
from ...datasets.demo_data import demo_slice
from ...evaluation.metrics import volume_metrics
from ...physics.fft import ifftc
from ...physics.mri.coils import espirit_maps, rss
from ...physics.mri.masks import line_mask
from .classical import cg_sense, cs_l1_wavelet, zero_filled
from .config import DEFAULT_ITERS, DEFAULT_LAM

SETTINGS = ((4, 0.08), (8, 0.04))  # fastMRI's standard (acceleration, centre fraction) pairs


def run_demo(
    out_dir: str | Path = "demo_output",
    seed: int = 0,
    print_fn=print,
    diffusion: bool = True,
    steps: int | None = None,
    samples: int | None = None,
) -> dict[str, dict[str, float]]:
    """Run the demo; returns ``{"<R>x <method>": {"PSNR":..,"SSIM":..,"NMSE":..,"seconds":..}}``
    (brain rows are named ``brain 4x <method>``).

    Writes ``<out_dir>/comparison.png`` (a missing ``out_dir`` is created: it is the demo's own).
    ``steps`` / ``samples``: DDS network evaluations per sample and posterior samples (``None``:
    the shipped prior's recommendation for 4×, a warm start from CS; CPU time grows with their product).
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
            ("sense", lambda: cg_sense(ku, maps, mask, lam=DEFAULT_LAM["sense"], iters=DEFAULT_ITERS["sense"]).abs()),
            ("cs", lambda: cs_l1_wavelet(ku, maps, mask, lam=DEFAULT_LAM["cs"], iters=DEFAULT_ITERS["cs"]).abs()),
        ):
            t0 = time.perf_counter()
            img = fn()[0].numpy()
            dt = time.perf_counter() - t0 + (t_maps if name != "zf" else 0.0)
            m = volume_metrics(target, img[None])
            m["seconds"] = dt
            results[f"{acc}x {name}"] = m
            images[f"{acc}x {name}"] = img
    rows = [[("reference (fully sampled RSS)", target[0], "image")]]
    rows += [[(f"{acc}x {m}", images[f"{acc}x {m}"], "image") for m in ("zf", "sense", "cs")] for acc, _ in SETTINGS]
    if diffusion:
        rows.append(_brain_part(seed, steps, samples, results, print_fn))
    print_fn(format_table(results))
    fig_path = out / "comparison.png"
    save_comparison(rows, results, fig_path)
    print_fn(f"figure: {fig_path}")
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of metrics, one row per reconstruction."""
    lines = [f"{'recon':<15}{'PSNR dB':>9}{'SSIM':>8}{'NMSE':>9}{'time s':>8}"]
    for name, m in results.items():
        lines.append(f"{name:<15}{m['PSNR']:>9.2f}{m['SSIM']:>8.3f}{m['NMSE']:>9.4f}{m.get('seconds', float('nan')):>8.2f}")
    return "\n".join(lines)


def _brain_part(
    seed: int, steps: int | None, samples: int | None, results: dict, print_fn, setting: tuple[int, float] = SETTINGS[0]
) -> list[tuple[str, np.ndarray, str]]:
    """The shipped brain slice at ``setting`` (4× by default): zf, CS and DDS with the shipped brain prior (mean and std)."""
    from ...config import build_settings
    from ...diffusion.prior_folder import load_prior
    from ...priors import shipped_prior_dir
    from .config import DiffusionConfig, recommended_settings
    from .diffusion import reconstruct_slice

    prior = load_prior(shipped_prior_dir("brain"))
    cfg = build_settings(
        DiffusionConfig, recommended=recommended_settings(prior.info, setting[0]), flags={"steps": steps, "samples": samples, "seed": seed}
    )
    data = demo_slice(seed=seed, anatomy="brain")
    print_fn(
        f"brain: {data.source}; prior: medrecon/priors/brain ({cfg.samples} samples x {cfg.steps} steps"
        f"{f', from CS at {cfg.start:g}' if cfg.start < 1 else ''})"
    )
    k = data.kspace
    target = rss(ifftc(k), dim=0)[None].numpy()
    acc, cf = setting
    mask = torch.from_numpy(line_mask("equispaced_fraction", k.shape[-1], cf, acc, seed).mask)[None, None, None]
    ku = k * mask[0]
    maps = espirit_maps(ku)
    samples = cfg.samples
    out = {}
    for name in ("zf", "cs", "dds"):
        t0 = time.perf_counter()
        with torch.no_grad():
            if name == "zf":
                img, std = zero_filled(ku[None])[0], None
            elif name == "cs":
                img, std = cs_l1_wavelet(ku[None], maps[None], mask, lam=DEFAULT_LAM["cs"], iters=DEFAULT_ITERS["cs"])[0].abs(), None
            else:
                mean, std = reconstruct_slice(ku, maps, mask, prior, cfg, torch.Generator().manual_seed(seed))
                img = mean.abs()
        m = volume_metrics(target, img.numpy()[None])
        m["seconds"] = time.perf_counter() - t0
        results[f"brain {acc}x {name}"] = m
        out[name] = (img.numpy(), None if std is None else std.numpy())
    return [
        ("brain reference", target[0], "image"),
        (f"brain {acc}x cs", out["cs"][0], "image"),
        (f"brain {acc}x dds", out["dds"][0], "image"),
        (f"brain {acc}x dds std ({samples} samples)", out["dds"][1], "std"),
    ]


def save_comparison(rows: list[list[tuple[str, np.ndarray, str]]], results: dict[str, dict[str, float]], path: Path) -> None:
    """Rows of panels ``(title, image, kind)`` (``kind``: ``image`` or ``std``), PSNR / SSIM in the
    titles of reconstructions, written atomically as PNG. Images of a row share the grey scale of
    last reference; ``std`` maps get their own colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(3 * ncols, 3.1 * len(rows)))
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    vmax = 1.0
    for r, row in enumerate(rows):
        if "reference" in row[0][0]:  # a reference starts a new grey scale
            vmax = float(np.percentile(row[0][1], 99.5))
        for c, (title, img, kind) in enumerate(row):
            ax = axes[r, c]
            if kind == "std":
                im = ax.imshow(img, cmap="magma", vmin=0, vmax=float(np.percentile(img, 99.5)) or 1.0)
                fig.colorbar(im, ax=ax, fraction=0.046)
            else:
                ax.imshow(img, cmap="gray", vmin=0, vmax=vmax)
            m = results.get(title)
            ax.set_title(f"{title}: {m['PSNR']:.1f} dB / {m['SSIM']:.3f}" if m else title, fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
