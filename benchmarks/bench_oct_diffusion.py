"""OCT speckle denoising with a diffusion prior trained on noisy B-scans only, against BM3D.

Run:  medrecon train --config configs/oct_ddpm.yaml --max-minutes 30        (the prior; noisy frames only)
      python benchmarks/bench_oct_diffusion.py --prior priors/oct_ddpm --tune     (→ results/oct_diffusion_tuning.json)
      python benchmarks/bench_oct_diffusion.py --prior priors/oct_ddpm            (→ results/oct_diffusion.md)
      python benchmarks/bench_oct_diffusion.py --prior priors/oct_ddpm --volume   (→ results/oct_volume.md)

No clean reference is used for training or tuning. ``--tune`` scores settings without one: case 01
has five noisy frames of the same position (``case01_test`` and ``case01_neighbor1..4``, noise
correlation between frames < 0.08), so each frame is denoised and compared with the mean of the
other four — an independent noisy reference whose noise adds the same constant to every setting's
error (Noise2Noise's argument), so the ranking is the ranking against the clean image. The table
is on the test cases 05–12 against the registered average (bench_oct.py's data and metrics);
BM3D is run in the same process at its default (σ_psd = 3 σ̂). ``--volume`` stacks the five frames
of case 01 as a volume along the slow axis: the true volume is constant along that axis, so the
spread across B-scans of a denoised volume (the en-face stripe figure) is artefact; B-scans
coupled in the likelihood step against independent ones.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from bench_oct import DATA, RESULTS, TEST_CASES, load, markdown_table, run

from medrecon.config import parse_set_options
from medrecon.datasets.oct_images import read_oct
from medrecon.datasets.oct_output import to_stored
from medrecon.diffusion.prior_folder import load_prior
from medrecon.tasks.oct.config import OCTDenoiseConfig, OCTDiffusionConfig
from medrecon.tasks.oct.diffusion import denoise_bscans_diffusion
from medrecon.tasks.oct.metrics import oct_metrics

# one step: the chain is one Tweedie estimate at the start level (the end level does not enter);
# every row uses the defaults of OCTDiffusionConfig except what it names
TUNE_GRID = (
    [dict(steps=1, start_level=s, end_level=min(s, 1.2), dc_lam=lam) for s in (2.0, 3.0, 4.0, 5.0, 6.0) for lam in (0.0, 30.0)]
    + [dict(steps=3, start_level=s, end_level=e) for s in (3.0, 6.0) for e in (1.2, 2.0)]
    + [dict(steps=2, start_level=5.0, end_level=4.0)]
    + [dict(tile=t) for t in (0, 64, 256)]
    + [dict(overlap=0.5), dict(samples=16)]
    + [dict(mirror=True, start_level=s) for s in (4.0, 5.0, 6.0)]
    + [dict(mirror=True, samples=16)]
)
QUICK_GRID = [dict(steps=1, start_level=s, end_level=min(s, 1.2)) for s in (3.0, 4.0, 5.0, 6.0)]  # --quick: the chain's level only
TUNE_CROP = (slice(100, 356), slice(200, 712))  # a 256 x 512 region of case 01 holding the retina (saves CPU)
FRAMES = ["case01_test"] + [f"case01_neighbor{i}" for i in range(1, 5)]


def frames() -> np.ndarray:
    """The five noisy frames of case 01 ``(5, H, W)`` float32."""
    return np.stack([read_oct(DATA / f"{f}.tif").bscans[0] for f in FRAMES])


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((x.astype(np.float64) - ref) ** 2)))


def diffusion(stack: np.ndarray, denoiser, cfg: OCTDiffusionConfig) -> tuple[np.ndarray, float]:
    """uint8-rounded mean ``(N, H, W)`` and seconds per B-scan."""
    t0 = time.perf_counter()
    mean, _, _ = denoise_bscans_diffusion(stack, denoiser, cfg)
    return to_stored(mean, np.uint8).astype(np.float32), (time.perf_counter() - t0) / len(stack)


def frame_score(out: np.ndarray, fr: np.ndarray, k: int) -> float:
    return psnr(out, np.delete(fr, k, axis=0).mean(axis=0))


def tune(denoiser, grid: list[dict], path: Path) -> dict:
    fr = frames()[(slice(None), *TUNE_CROP)]
    rows = []
    for kw in grid:
        cfg = OCTDiffusionConfig(**kw)
        scores = [frame_score(diffusion(fr[[k]], denoiser, cfg)[0][0], fr, k) for k in (0, 1)]
        rows.append({**kw, "psnr_vs_other_frames": round(float(np.mean(scores)), 3)})
        print(rows[-1], flush=True)
    best = max((r for r in rows if "samples" not in r), key=lambda r: r["psnr_vs_other_frames"])  # at the default sample count
    bm3d = [frame_score(run(fr[k], OCTDenoiseConfig())[0], fr, k) for k in (0, 1)]
    result = {
        "criterion": "PSNR of frames 0-1 of case 01 (rows 100-355, columns 200-711) against the mean of the other four noisy frames (no clean reference)",
        "prior_steps": denoiser.info.get("training_steps"),
        "defaults": OCTDiffusionConfig().model_dump(
            include={"samples", "steps", "start_level", "end_level", "dc_lam", "tile", "overlap", "mirror"}
        ),
        "rows": rows,
        "best": best,
        "bm3d_same_criterion": round(float(np.mean(bm3d)), 3),
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    print("best", best, "BM3D", result["bm3d_same_criterion"])
    return result


def band_note(info: dict) -> str:
    """`` on timesteps lo-hi`` for a prior trained on a band of timesteps (TrainConfig.timestep_range), else ``""``."""
    band = (info.get("train_config") or {}).get("timestep_range")
    return f" on timesteps {band[0]}-{band[1]}" if band else ""


def table(denoiser, sample_counts: list[int], path: Path, settings: dict | None = None) -> str:
    counts = {f"diffusion, {'1 sample' if n == 1 else f'mean of {n}'}": n for n in sample_counts}
    names = ["noisy input", "BM3D (σ_psd = 3 σ̂)", *counts]
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for case in TEST_CASES:
        noisy, avg = load(case)
        rows["noisy input"].append({**oct_metrics(avg, noisy), "s": None})
        out, seconds = run(noisy, OCTDenoiseConfig())
        rows[names[1]].append({**oct_metrics(avg, out), "s": seconds})
        for name, n in counts.items():
            out, sec = diffusion(noisy[None], denoiser, OCTDiffusionConfig(**{**(settings or {}), "samples": n}))
            rows[name].append({**oct_metrics(avg, out[0]), "s": sec})
        print(f"case {case:02d}: " + "  ".join(f"{n}: {rows[n][-1]['PSNR']:.2f}/{rows[n][-1]['SSIM']:.3f}" for n in names), flush=True)
    cfg = OCTDiffusionConfig(**(settings or {}))
    info = denoiser.info

    intro = (
        f"Duke SD-OCT test cases {TEST_CASES[0]:02d}–{TEST_CASES[-1]:02d} against the registered average (research use). "
        f"Prior: {info.get('training_steps')} CPU steps{band_note(info)} on the noisy frames of cases 01–04 and case 01's four neighbours "
        f"({info.get('data', '')[:40]}…); settings of OCTDiffusionConfig (chain from {cfg.start_level:g} σ̂, {cfg.steps} "
        f"step(s), likelihood λ {cfg.dc_lam:g}, {cfg.tile}-pixel tiles overlapping {cfg.overlap:g}), chosen without a clean reference "
        "(oct_diffusion_tuning.json). Results rounded to uint8 as written; s / B-scan on 2 shared CPU cores."
    )
    text = markdown_table(intro, rows)
    path.write_text(text)
    print(text)
    return text


def stripes(vol: np.ndarray) -> float:
    """Mean over pixels of the std across B-scans (grey levels); the true volume is constant along that axis."""
    return float(vol.astype(np.float64).std(axis=0, ddof=1).mean())


def volume(denoiser) -> str:
    fr = frames()[(slice(None), *TUNE_CROP)]
    avg = read_oct(DATA / "case01_average.tif").bscans[0][TUNE_CROP]
    lines = [
        "Case 01's five noisy frames of one position (rows 100-355, columns 200-711) stacked as a 5-B-scan volume: std "
        "across B-scans (grey levels, mean over pixels; the true volume is constant along the slow axis, so this is "
        "en-face stripe artefact) and mean PSNR of the B-scans against case 01's registered average; diffusion with "
        "4 samples.",
        "",
        "| method | std across B-scans | PSNR dB |",
        "|---|---|---|",
        f"| noisy | {stripes(fr):.2f} | {np.mean([psnr(f, avg) for f in fr]):.2f} |",
    ]
    bm = np.stack([run(f, OCTDenoiseConfig())[0] for f in fr])
    lines.append(f"| BM3D per B-scan | {stripes(bm):.2f} | {np.mean([psnr(f, avg) for f in bm]):.2f} |")
    base = OCTDiffusionConfig()
    out, _ = diffusion(fr, denoiser, base.model_copy(update={"batch": 5, "samples": 4}))
    lines.append(f"| diffusion, defaults, B-scans independent | {stripes(out):.2f} | {np.mean([psnr(f, avg) for f in out]):.2f} |")
    for lam, coupling in ((100.0, 0.0), (100.0, 10.0), (100.0, 100.0), (100.0, 1000.0)):
        cfg = OCTDiffusionConfig(batch=5, coupling=coupling, dc_lam=lam, samples=4)
        out, _ = diffusion(fr, denoiser, cfg)
        label = "B-scans independent" if coupling == 0 else f"neighbours coupled, β {coupling:g}"
        lines.append(f"| diffusion, likelihood step λ {lam:g}, {label} | {stripes(out):.2f} | {np.mean([psnr(f, avg) for f in out]):.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    (RESULTS / "oct_volume.md").write_text(text)
    print(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prior", required=True, help="the OCT prior folder")
    p.add_argument("--tune", action="store_true", help="reference-free grid on case 01's frames")
    p.add_argument("--volume", action="store_true", help="en-face stripes of a 5-frame volume, coupled vs independent")
    p.add_argument("--samples", default="1,4,8", help="table: the sample counts of the diffusion rows")
    p.add_argument("--quick", action="store_true", help="--tune: the chain's start level only (4 rows)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="table: an OCTDiffusionConfig setting (repeatable)")
    p.add_argument("--out", default=None, help="result file (default results/oct_diffusion_tuning.json, results/oct_diffusion.md)")
    args = p.parse_args()
    torch.set_num_threads(2)
    if not DATA.exists():
        raise SystemExit(f"no OCT data at {DATA}")
    denoiser = load_prior(args.prior)
    if args.tune:
        tune(denoiser, QUICK_GRID if args.quick else list(TUNE_GRID), Path(args.out or RESULTS / "oct_diffusion_tuning.json"))
    elif args.volume:
        volume(denoiser)
    else:
        table(
            denoiser, [int(n) for n in args.samples.split(",")], Path(args.out or RESULTS / "oct_diffusion.md"), parse_set_options(args.set)
        )


if __name__ == "__main__":
    main()
