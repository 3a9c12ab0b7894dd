"""Retinal OCT speckle denoising on real SD-OCT B-scans: BM3D, non-local means and TV against the registered average.

Run:  python benchmarks/bench_oct.py --tune [--methods bm3d]   (multipliers on cases 01-04 → results/oct_tuning.json)
      python benchmarks/bench_oct.py          (the table on cases 05-12 → results/oct_baselines.md)

Data: ``../shared/data/oct/caseNN_test.tif`` (one noisy B-scan, 450×900 or 401×900 uint8) and
``caseNN_average.tif`` (the registered average of many frames: the reference) for NN = 01..12;
Fang et al. 2013, "Fast acquisition and reconstruction of optical coherence tomography images
via sparse representation", IEEE Trans. Med. Imaging 32(11):2034 (Duke; research use only —
nothing derived from the images is committed beyond these summary numbers).

Every method gets its strength from the noise σ estimated from each B-scan (medrecon.tasks.oct.noise)
times one multiplier per method (medrecon.tasks.oct.config); the multipliers are chosen by mean PSNR
on cases 01-04 only (``--tune``; the smallest within 0.01 dB of the best), so cases 05-12 are a
held-out test set. Results are rounded and clipped to uint8, as ``medrecon denoise oct`` writes
them, before the metrics are computed. Metrics (medrecon.tasks.oct.metrics): PSNR / SSIM against
the average; CNR, MSR on foreground ROIs and ENL on the vitreous background, all chosen by the
module's rule from the average; EPI against the average.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from medrecon.datasets.oct_images import read_oct
from medrecon.datasets.oct_output import to_stored
from medrecon.tasks.oct.baselines import denoise_bscan
from medrecon.tasks.oct.config import OCT_METHODS, OCTDenoiseConfig
from medrecon.tasks.oct.metrics import bscan_metrics, oct_metrics, oct_regions
from medrecon.tasks.oct.noise import estimate_noise_sigma

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "oct"
RESULTS = Path(__file__).parent / "results"
TUNE_CASES = [1, 2, 3, 4]
TEST_CASES = list(range(5, 13))
GRID = {
    "bm3d": [0.8, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0],
    "nlm": [0.6, 0.8, 1.0, 1.2, 1.5],
    "tv": [1.0, 1.5, 2.0, 3.0, 4.0],
}
PLATEAU_DB = 0.01  # multipliers this close in PSNR are a tie: the smaller (less smoothing) is chosen
COLUMNS = ("PSNR", "SSIM", "CNR_dB", "ENL", "MSR", "EPI")


def load(case: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, average) ``(H, W)`` float32 of one case."""
    noisy = read_oct(DATA / f"case{case:02d}_test.tif").bscans[0]
    avg = read_oct(DATA / f"case{case:02d}_average.tif").bscans[0]
    return noisy, avg


def run(noisy: np.ndarray, cfg: OCTDenoiseConfig) -> tuple[np.ndarray, float]:
    """The uint8 result (as the CLI writes it, back in float32) and the seconds it took."""
    t0 = time.perf_counter()
    out = denoise_bscan(noisy, estimate_noise_sigma(noisy), cfg)
    return to_stored(out, np.uint8).astype(np.float32), time.perf_counter() - t0


def tune(methods: tuple[str, ...]) -> dict:
    """Mean PSNR over the tuning cases for each multiplier of ``GRID``; updates ``methods`` in oct_tuning.json."""
    path = RESULTS / "oct_tuning.json"
    cases = [load(c) for c in TUNE_CASES]
    result: dict = json.loads(path.read_text()) if path.exists() else {}
    result.update({"cases": TUNE_CASES, "criterion": "mean PSNR vs the registered average", "grid": GRID})
    result.setdefault("psnr", {})
    result.setdefault("best", {})
    for method in methods:
        result["psnr"][method] = {}
        for f in GRID[method]:
            cfg = OCTDenoiseConfig(method=method, **{f"{method}_factor": f})
            scores = [oct_metrics(avg, run(noisy, cfg)[0])["PSNR"] for noisy, avg in cases]
            result["psnr"][method][str(f)] = round(float(np.mean(scores)), 3)
            print(f"{method} factor {f:g}: PSNR {np.mean(scores):.3f}", flush=True)
    for method, scores in result["psnr"].items():  # the least smoothing within PLATEAU_DB of the best
        top = max(scores.values())
        best = min(float(f) for f, v in scores.items() if v >= top - PLATEAU_DB)
        result["best"][method] = {"factor": best, "psnr": scores[str(best)]}
    result["rule"] = f"the smallest multiplier within {PLATEAU_DB} dB of the best mean PSNR"
    if all(m in result["best"] for m in OCT_METHODS):
        result["best_method"] = max(OCT_METHODS, key=lambda m: result["best"][m]["psnr"])
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["best"], indent=2), "\nbest method:", result.get("best_method"))
    return result


def markdown_table(intro: str, rows: dict[str, list[dict]]) -> str:
    """The results table: one row per method, the mean over B-scans of each metric (PSNR: ± std) and seconds."""

    def cell(values: list, key: str) -> str:
        v = [r[key] for r in values if r[key] is not None]
        if not v:
            return "–"
        digits = 3 if key in ("SSIM", "EPI") else 1 if key in ("ENL", "s") else 2
        return f"{np.mean(v):.{digits}f} ± {np.std(v):.{digits}f}" if key == "PSNR" else f"{np.mean(v):.{digits}f}"

    lines = [intro, "", "| method | PSNR dB | SSIM | CNR dB | ENL | MSR | EPI | s / B-scan |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(cell(values, k) for k in (*COLUMNS, "s")) + " |" for name, values in rows.items()]
    return "\n".join(lines) + "\n"


def table() -> str:
    rows: dict[str, list[dict]] = {name: [] for name in ("average (reference)", "noisy input", *OCT_METHODS)}
    for case in TEST_CASES:
        noisy, avg = load(case)
        regions = oct_regions(avg)
        rows["average (reference)"].append({"PSNR": None, "SSIM": None, **bscan_metrics(avg, avg, regions), "s": None})
        rows["noisy input"].append({**oct_metrics(avg, noisy), "s": None})
        for method in OCT_METHODS:
            out, seconds = run(noisy, OCTDenoiseConfig(method=method))
            rows[method].append({**oct_metrics(avg, out), "s": seconds})
            print(f"case {case:02d} {method}: PSNR {rows[method][-1]['PSNR']:.2f}  {seconds:.1f} s", flush=True)
    cfg = OCTDenoiseConfig()
    label = {
        "bm3d": f"BM3D (σ_psd = {cfg.bm3d_factor:g} σ)",
        "nlm": f"NLM (h = {cfg.nlm_factor:g} σ, {cfg.nlm_patch_size}² patches, search ±{cfg.nlm_patch_distance})",
        "tv": f"TV Chambolle (weight = {cfg.tv_factor:g} σ, {cfg.tv_iters} it)",
    }
    intro = (
        f"Duke SD-OCT B-scans (Fang et al. 2013, research use), test cases {TEST_CASES[0]:02d}–{TEST_CASES[-1]:02d} "
        f"(multipliers tuned on {TUNE_CASES[0]:02d}–{TUNE_CASES[-1]:02d}, oct_tuning.json). Mean over the 8 B-scans "
        "(PSNR: ± std); results rounded to uint8 as written. Reference: the registered average; regions (vitreous "
        "background, 6 ROIs in the bright layers, retina band) chosen from it by medrecon.tasks.oct.metrics' rule. "
        "σ estimated per B-scan (db2 HH MAD). s / B-scan: 2 shared CPU cores, nice 19."
    )
    text = markdown_table(intro, {label.get(name, name): values for name, values in rows.items()})
    (RESULTS / "oct_baselines.md").write_text(text)
    print(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tune", action="store_true", help="choose the multipliers on cases 01-04 (writes results/oct_tuning.json)")
    p.add_argument("--methods", default=",".join(OCT_METHODS), help="--tune: the methods to (re)tune, comma-separated")
    args = p.parse_args()
    if not DATA.exists():
        raise SystemExit(f"no OCT data at {DATA}")
    if args.tune:
        tune(tuple(m for m in args.methods.split(",") if m))
    else:
        table()


if __name__ == "__main__":
    main()
