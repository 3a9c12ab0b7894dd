"""SENSE forward + adjoint: medrecon's torch operator against ``sigpy.mri.linop.Sense`` on this CPU.

Run:  python benchmarks/bench_sense_vs_sigpy.py [--threads N] [--repeats R]
Prints a Markdown table (time per forward+adjoint pair, ratio SigPy / medrecon) and writes it to
benchmarks/results/sense_vs_sigpy.md. SigPy has no batch axis: a batch of B images is B calls.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from timing import best_of  # benchmarks/timing.py: a script's own folder is on sys.path


def main() -> None:
    import sigpy.mri

    from medrecon.physics.mri.sense import SenseOperator

    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []
    for coils, n in ((8, 256), (15, 320)):
        for batch in (1, 8):
            maps = (rng.standard_normal((coils, n, n)) + 1j * rng.standard_normal((coils, n, n))).astype(np.complex64)
            x = (rng.standard_normal((batch, n, n)) + 1j * rng.standard_normal((batch, n, n))).astype(np.complex64)
            mask = np.zeros((n, n), np.float32)
            mask[:, ::4] = 1
            sp_op = sigpy.mri.linop.Sense(maps, weights=mask)
            t_sp = best_of(lambda: [sp_op.H * (sp_op * x[b]) for b in range(batch)], args.repeats)
            op = SenseOperator(torch.from_numpy(maps)[None], torch.from_numpy(mask)[None, None])
            xt = torch.from_numpy(x)
            with torch.no_grad():
                t_mr = best_of(lambda: op.adjoint(op(xt)), args.repeats)
            rows.append((coils, n, batch, t_sp * 1e3, t_mr * 1e3, t_sp / t_mr))
    head = (
        f"SENSE forward+adjoint, complex64, CPU ({platform.processor() or platform.machine()}, {args.threads} torch threads), "
        f"best of {args.repeats}; torch {torch.__version__}, sigpy {sigpy.__version__}\n\n"
        "| coils × size | batch | SigPy ms | medrecon ms | SigPy / medrecon |\n|---|---|---|---|---|\n"
    )
    table = head + "".join(f"| {c} × {n}² | {b} | {a:.1f} | {m:.1f} | {r:.2f} |\n" for c, n, b, a, m, r in rows)
    print(table)
    out = Path(__file__).parent / "results" / "sense_vs_sigpy.md"
    out.write_text(table)


if __name__ == "__main__":
    main()
