"""``medrecon demo``: the embedded real MR slices at 4× and 8×, classical and with the shipped brain prior."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError


def add_parser(sub: argparse._SubParsersAction) -> None:
    de = sub.add_parser("demo", help="reconstruct the embedded real MR slices at 4x and 8x (classical and with the shipped brain prior)")
    de.add_argument("--out-dir", default="demo_output")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--no-diffusion", action="store_true", help="skip the diffusion part (brain slice, shipped prior)")
    de.add_argument(
        "--steps", type=int, default=None, help="diffusion: network evaluations per sample (default: the prior's recommendation)"
    )
    de.add_argument("--samples", type=int, default=None, help="diffusion: posterior samples (default: the prior's recommendation)")
    de.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..tasks.mri.demo import run_demo

    for name in ("steps", "samples"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ArgumentError(f"--{name}: expected >= 1, got {getattr(args, name)}")
    run_demo(args.out_dir, seed=args.seed, diffusion=not args.no_diffusion, steps=args.steps, samples=args.samples)
    return 0
