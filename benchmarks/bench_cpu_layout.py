"""Training speed on the CPU with the networks in channels-last (NHWC) layout against PyTorch's default (NCHW).

Run:  python benchmarks/bench_cpu_layout.py [--configs configs/oct_ddpm.yaml,configs/mr2ct_head.yaml] [--repeats 2] [--seconds 60]
Writes benchmarks/results/cpu_layout.md.

``medrecon train`` on the CPU keeps the weights channels-last and hands the network channels-last
input (:func:`~medrecon.diffusion.training.train_prior`, :class:`~medrecon.diffusion.denoiser.UNetPrior`).
For each config this runs ``medrecon train --config C --max-minutes SECONDS/60`` ``--repeats``
times in each layout, alternating, each in a fresh process, and counts the steps done; the NCHW
runs switch channels-last off (what medrecon did before 2026-12-02). The configs' data must be
present (``../shared/data``). The time box includes start-up (reading the data), so the
steps-per-second figures are slightly below the training loop's own rate; the ratio is the point.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def child(layout: str, config: str, seconds: float, out: str) -> int:
    """One time-boxed ``medrecon train`` run in ``layout`` (``nchw``: channels-last switched off)."""
    from medrecon.cli.main import main
    from medrecon.diffusion import denoiser, training

    if layout == "nchw":
        denoiser.channels_last = training.channels_last = lambda sd: torch.contiguous_format
    return main(["train", "--config", config, "--max-minutes", str(seconds / 60), "--output", out, "--quiet"])


def steps_done(layout: str, config: str, seconds: float) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, __file__, "--child", layout, "--configs", config, "--seconds", str(seconds), "--out", f"{tmp}/prior"]
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        return int(json.loads(Path(f"{tmp}/prior/prior.json").read_text())["training_steps"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="configs/oct_ddpm.yaml,configs/mr2ct_head.yaml")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cpu_layout.md"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.exit(child(args.child, args.configs, args.seconds, args.out))
    lines = [
        f"`medrecon train`, {args.seconds:.0f} s time boxes, {args.repeats} per layout (alternating), "
        f"{torch.get_num_threads()} CPU threads, torch {torch.__version__}. Steps done per run.",
        "",
        "| config | NCHW steps | channels-last steps | NCHW steps/s | channels-last steps/s | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for config in args.configs.split(","):
        runs: dict[str, list[int]] = {"nchw": [], "cl": []}
        for _ in range(args.repeats):
            for layout in ("cl", "nchw"):
                runs[layout].append(steps_done(layout, config, args.seconds))
        mean = {k: sum(v) / len(v) for k, v in runs.items()}
        lines.append(
            f"| `{config}` | {', '.join(map(str, runs['nchw']))} | {', '.join(map(str, runs['cl']))} | "
            f"{mean['nchw'] / args.seconds:.2f} | {mean['cl'] / args.seconds:.2f} | {mean['cl'] / mean['nchw']:.2f}× |"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
