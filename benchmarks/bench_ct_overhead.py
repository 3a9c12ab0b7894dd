"""Overhead of medrecon's torch CT operator against calling ASTRA directly on the same arrays (CPU, 2-D).

Run:  python benchmarks/bench_ct_overhead.py [--repeats R]
Writes benchmarks/results/ct_overhead.md. ASTRA baseline: ``astra.create_sino`` /
``astra.create_backprojection`` with the same ``linear`` projector (what a user would call).
Single slice, so both run ASTRA's single-threaded CPU projector.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import best_of  # benchmarks/timing.py: a script's own folder is on sys.path


def main() -> None:
    import astra

    from medrecon.physics.ct import CTGeometry, CTProjector

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for views in (180, 720):
        g = CTGeometry.create("parallel", (512, 512), (0.9765625, 0.9765625), views)
        x = np.random.default_rng(0).random((512, 512)).astype(np.float32)
        y = np.random.default_rng(1).random(g.sino_shape).astype(np.float32)
        pid = astra.create_projector("linear", g.astra_proj_geom(), g.astra_vol_geom())

        def a_fp():
            i, _ = astra.create_sino(x, pid)
            astra.data2d.delete(i)

        def a_bp():
            i, _ = astra.create_backprojection(y, pid)
            astra.data2d.delete(i)

        op = CTProjector(g)
        xt, yt = torch.from_numpy(x)[None], torch.from_numpy(y)[None]
        with torch.no_grad():
            t = {
                "astra FP": best_of(a_fp, args.repeats),
                "medrecon FP": best_of(lambda: op(xt), args.repeats),
                "astra BP": best_of(a_bp, args.repeats),
                "medrecon BP": best_of(lambda: op.adjoint(yt), args.repeats),
            }
        astra.projector.delete(pid)
        for d in ("FP", "BP"):
            rows.append((views, d, t[f"astra {d}"] * 1e3, t[f"medrecon {d}"] * 1e3))
    table = (
        f"CPU 2-D parallel beam, 512², `linear` projector, one slice, best of {args.repeats}; astra {astra.__version__}\n\n"
        "| views | op | ASTRA ms | medrecon ms | overhead |\n|---|---|---|---|---|\n"
        + "".join(f"| {v} | {d} | {a:.1f} | {m:.1f} | {100 * (m / a - 1):+.1f} % |\n" for v, d, a, m in rows)
    )
    print(table)
    (Path(__file__).parent / "results" / "ct_overhead.md").write_text(table)


if __name__ == "__main__":
    main()
