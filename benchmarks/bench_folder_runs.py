"""Folder reconstruction throughput (volumes per hour) with 1 and 2 processes, and folder evaluation against fastMRI's.

Builds a folder of fastMRI-layout volumes from the real 8-coil head slice (../shared/data/mri,
each volume ``--slices`` copies with independent complex noise at 1 % of the k-space RMS),
undersamples it with ``medrecon simulate mri`` (4×, equispaced), reconstructs the folder with
``medrecon reconstruct mri`` in one process (``--threads`` threads) and under ``torchrun`` with
2 processes (``--threads / 2`` each), checks the two output folders are identical, evaluates
them with ``medrecon evaluate`` and with the ``fastmri`` package, and writes
``benchmarks/results/folder_runs.{md,json}``.

    python benchmarks/bench_folder_runs.py --volumes 4 --slices 6 --method cs
    python benchmarks/bench_folder_runs.py --volumes 2 --slices 4 --build benchmarks/data/head_volumes   # only the folder
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "mri" / "head_8coil_kspace.npz"


def build_folder(folder: Path, volumes: int, slices: int) -> tuple[int, int, int]:
    import torch

    from medrecon.datasets.fastmri import make_ismrmrd_header
    from medrecon.physics.fft import ifftc
    from medrecon.physics.mri.coils import rss

    k = np.load(DATA)["kspace"].astype(np.complex64)  # (C, H, W)
    c, h, w = k.shape
    scale = float(np.sqrt(np.mean(np.abs(k) ** 2)))
    folder.mkdir(parents=True)
    for v in range(volumes):
        rng = np.random.default_rng(v)
        noise = (rng.standard_normal((slices, c, h, w)) + 1j * rng.standard_normal((slices, c, h, w))) * 0.01 * scale
        vol = (k[None] + noise).astype(np.complex64)
        target = rss(ifftc(torch.from_numpy(vol)), dim=1).numpy().astype(np.float32)
        with h5py.File(folder / f"head{v:02d}.h5", "w") as f:
            f.create_dataset("kspace", data=vol)
            f.create_dataset("reconstruction_rss", data=target)
            f.create_dataset(
                "ismrmrd_header", data=np.bytes_(make_ismrmrd_header((h, w, 1), (h, w, 1), (h * 0.9, w * 0.9, 5.0), w // 2, w))
            )
            f.attrs["acquisition"] = "AXT1"
    return c, h, w


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def outputs(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: h5py.File(p)["reconstruction"][()] for p in sorted(folder.glob("*.h5"))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--volumes", type=int, default=4)
    ap.add_argument("--slices", type=int, default=6)
    ap.add_argument("--method", default="cs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "folder_runs"))
    ap.add_argument("--build", default=None, help="only write the folder of fully sampled volumes here (for medrecon benchmark)")
    args = ap.parse_args()
    if args.build:
        build_folder(Path(args.build), args.volumes, args.slices)
        print(f"wrote {args.volumes} volumes to {args.build}")
        return
    med = [sys.executable, "-m", "medrecon"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        c, h, w = build_folder(tmp / "full", args.volumes, args.slices)
        run(
            [*med, "simulate", "mri", "--input", str(tmp / "full"), "--accel", "4", "--seed", "0", "--out", str(tmp / "under"), "--quiet"],
            1,
        )
        recon = [*med, "reconstruct", "mri", str(tmp / "under"), "--method", args.method, "--quiet"]
        one = run([*recon, "--out", str(tmp / "r1")], args.threads)
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "medrecon"]
        two = run([*torchrun, *recon[3:], "--out", str(tmp / "r2")], max(1, args.threads // 2))
        print(f"1 process: {one:.1f} s, 2 processes: {two:.1f} s", flush=True)
        a, b = outputs(tmp / "r1"), outputs(tmp / "r2")
        worst_diff = max(float(np.max(np.abs(a[n] - b[n]) / np.max(np.abs(a[n])))) for n in a)
        js = tmp / "m.json"
        run([*med, "evaluate", "--target", str(tmp / "under"), "--recon", str(tmp / "r1"), "--json", str(js), "--quiet"], args.threads)
        ours = json.loads(js.read_text())["metrics"]
        from fastmri.evaluate import evaluate

        ref = evaluate(
            argparse.Namespace(target_path=tmp / "under", predictions_path=tmp / "r1", acquisition=None, acceleration=None),
            "reconstruction_rss",
        )
        theirs = {m: float(np.ravel(v)[0]) for m, v in ref.means().items()}  # fastMRI's SSIM mean is a 1-element array
        agree = max(abs(ours[m]["mean"] - theirs[m]) / abs(theirs[m]) for m in ("NMSE", "PSNR", "SSIM"))
    n = args.volumes
    result = {
        "volumes": n,
        "slices_per_volume": args.slices,
        "kspace": [c, h, w],
        "method": args.method,
        "threads": args.threads,
        "seconds_1_process": round(one, 1),
        "seconds_2_processes": round(two, 1),
        "volumes_per_hour_1_process": round(3600 * n / one, 1),
        "volumes_per_hour_2_processes": round(3600 * n / two, 1),
        "max_relative_difference_1_vs_2_processes": worst_diff,
        "metrics": {m: ours[m] for m in ("NMSE", "PSNR", "SSIM")},
        "fastmri_package_max_relative_difference": agree,
    }
    Path(args.out + ".json").write_text(json.dumps(result, indent=2))
    md = [
        f"Folder reconstruction, `reconstruct mri FOLDER --method {args.method}`: {n} volumes × {args.slices} slices of the real",
        f"8-coil head k-space ({c} coils, {h}×{w}; copies with independent noise), 4× equispaced; {args.threads} CPU cores.",
        "",
        "| processes | threads each | wall s | volumes / hour | s / slice |",
        "|---|---|---|---|---|",
        f"| 1 | {args.threads} | {one:.1f} | {3600 * n / one:.1f} | {one / (n * args.slices):.2f} |",
        f"| 2 (torchrun) | {max(1, args.threads // 2)} | {two:.1f} | {3600 * n / two:.1f} | {two / (n * args.slices):.2f} |",
        "",
        f"Outputs of the two runs: largest relative difference {worst_diff:.1e} (thread counts differ).",
        f"Mean over volumes: NMSE {ours['NMSE']['mean']:.4f}, PSNR {ours['PSNR']['mean']:.2f} dB, SSIM {ours['SSIM']['mean']:.4f};",
        f"the `fastmri` package's evaluate.py on the same folders differs by at most {agree:.1e} (relative).",
    ]
    Path(args.out + ".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
