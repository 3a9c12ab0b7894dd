"""The report of ``medrecon benchmark``: one markdown table, a per-volume CSV, and figures.

Rows are per volume and cell (method, mask, acceleration, seed) with fastMRI's metrics
(:mod:`medrecon.evaluation.folders`) and seconds per slice. The table gives, per method, mask and
acceleration, the mean ± sample std over volumes × seeds; the figures are box plots of PSNR and
SSIM per method (one panel per acceleration) and, per mask and acceleration, the middle slice of
the first volume (first seed) for each method beside the target, with its error map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from .folders import write_rows_csv

SHOWN = ("PSNR", "SSIM", "NMSE")


def cell_name(mask: str, acceleration: float, seed: int, data_key: str = "") -> str:
    """A cell's folder name: ``<mask>_<R>x_seed<S>_<data key>``."""
    return f"{mask}_{acceleration:g}x_seed{seed}" + (f"_{data_key}" if data_key else "")


def _mean_std(values: list[float], digits: int) -> str:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if arr.size == 0:
        return "n/a"
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def table(rows: list[dict], nfe: dict[str, int], order: Sequence[str]) -> str:
    """The markdown table: method × mask × acceleration, mean ± std over volumes and seeds."""
    lines = [
        "| method | mask | R | NFE / slice | PSNR dB | SSIM | NMSE | s / slice | volumes × seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cells = sorted({(r["mask"], r["acceleration"]) for r in rows}, key=lambda c: (c[0], c[1]))
    for mask, accel in cells:
        for method in order:
            sel = [r for r in rows if r["method"] == method and r["mask"] == mask and r["acceleration"] == accel]
            if not sel:
                continue
            lines.append(
                f"| {method} | {mask} | {accel:g}× | {nfe.get(method, 0) or '–'} | {_mean_std([r['PSNR'] for r in sel], 2)} | "
                f"{_mean_std([r['SSIM'] for r in sel], 4)} | {_mean_std([r['NMSE'] for r in sel], 4)} | "
                f"{_mean_std([r.get('seconds_per_slice') for r in sel], 2)} | {len(sel)} |"
            )
    return "\n".join(lines)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def distribution_figures(rows: list[dict], order: Sequence[str], folder: Path) -> list[Path]:
    """Box plots of PSNR and SSIM per method, one panel per acceleration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    accels = sorted({r["acceleration"] for r in rows})
    paths = []
    for metric in ("PSNR", "SSIM"):
        fig, axes = plt.subplots(1, len(accels), figsize=(3.2 * len(accels) + 1, 3.2), squeeze=False)
        for i, (ax, accel) in enumerate(zip(axes[0], accels)):
            data = [[r[metric] for r in rows if r["method"] == m and r["acceleration"] == accel] for m in order]
            ax.boxplot(data)
            ax.set_xticks(range(1, len(order) + 1), list(order))
            ax.set_title(f"{accel:g}×")
            if i == 0:
                ax.set_ylabel(metric + (" (dB)" if metric == "PSNR" else ""))
            ax.tick_params(axis="x", labelrotation=30)
        paths.append(_save(fig, folder / f"{metric.lower()}_by_method.png"))
    return paths


def example_figures(rows: list[dict], order: Sequence[str], keys: dict[str, str], out: Path, data_key: str = "") -> list[Path]:
    """Per mask and acceleration: the target's middle slice, each method's, and their error maps (first volume, first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .folders import fastmri_crop, read_image, recon_for

    paths = []
    for mask, accel in sorted({(r["mask"], r["acceleration"]) for r in rows}):
        seed = min(r["seed"] for r in rows if r["mask"] == mask and r["acceleration"] == accel)
        first = sorted(r["file"] for r in rows if r["mask"] == mask and r["acceleration"] == accel)[0]
        cell = cell_name(mask, accel, seed, data_key)
        target_path = out / "data" / cell / first
        target = read_image(target_path, ("reconstruction_rss", "reconstruction_esc"))
        k = target.shape[0] // 2
        shown = [m for m in order if recon_for(target_path, out / "recon" / keys[m] / cell).is_file()]
        fig, axes = plt.subplots(2, len(shown) + 1, figsize=(2.6 * (len(shown) + 1), 5.4), squeeze=False)
        vmax = float(np.percentile(target[k], 99.5))  # a few bright pixels would darken the rest
        t = None
        for j, m in enumerate(shown, start=1):
            recon = read_image(recon_for(target_path, out / "recon" / keys[m] / cell), ("reconstruction",))
            t, r, _ = fastmri_crop(target, recon, target_path)
            psnr = next(
                x["PSNR"]
                for x in rows
                if x["method"] == m and x["file"] == first and x["seed"] == seed and x["mask"] == mask and x["acceleration"] == accel
            )
            axes[0, j].imshow(r[k], cmap="gray", vmin=0, vmax=vmax)
            axes[0, j].set_title(f"{m}\n{psnr:.2f} dB", fontsize=9)
            axes[1, j].imshow(np.abs(r[k] - t[k]), cmap="magma", vmin=0, vmax=0.2 * vmax)
            axes[1, j].set_title("|error| (0–20 %)", fontsize=8)
        axes[0, 0].imshow(t[k] if t is not None else target[k], cmap="gray", vmin=0, vmax=vmax)
        axes[0, 0].set_title(f"target\n{first} slice {k}", fontsize=9)
        for ax in axes.ravel():
            ax.axis("off")
        fig.suptitle(f"{mask} {accel:g}×, seed {seed}", fontsize=10)
        paths.append(_save(fig, out / "figures" / f"examples_{mask}_{accel:g}x.png"))
    return paths


def write_report(
    rows: list[dict], nfe: dict[str, int], out: Path, order: Sequence[str], keys: dict[str, str], data_key: str = ""
) -> list[Path]:
    """Write ``results.md``, ``results.csv`` and the figures into ``out``; returns the paths."""
    md = out / "results.md"
    with atomic_output(md) as tmp:
        tmp.write_text(
            "fastMRI metrics (volume-wise, mean ± std over volumes × seeds); NFE: network evaluations per slice.\n\n"
            + table(rows, nfe, order)
            + "\n"
        )
    table_csv = write_rows_csv(rows, out / "results.csv")
    return [md, table_csv, *distribution_figures(rows, order, out / "figures"), *example_figures(rows, order, keys, out, data_key)]
