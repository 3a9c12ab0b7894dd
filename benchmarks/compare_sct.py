"""Two synthetic CTs of the same held-out slices, compared slice by slice: is a difference more than slice-to-slice spread?

Run:  python benchmarks/compare_sct.py A.npy B.npy [--pet] [--slab 28,43]

``A.npy`` / ``B.npy``: the ``(slices, rows, cols)`` HU arrays ``bench_mr2ct.py`` saves beside its
table (``results/<table>_sct.tmp/<row>.npy``). The target is the template CT's slab (default 28–43,
``configs/mr2ct_head.yaml``) or, with ``--pet``, the held-out NAC-PET / CT pairs (default 0–9).
For body MAE, bone MAE and SSIM (:func:`~medrecon.evaluation.sct_metrics.sct_metrics` of each slice
alone) it prints B − A per slice, its mean, a 95 % bootstrap interval over slices (10,000
resamples, seed 0) and on how many slices B is better. Slices without bone are left out of bone MAE.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_mr2ct import load_case, load_pet_case

from medrecon.evaluation.ct_metrics import body_mask
from medrecon.evaluation.sct_metrics import BONE_HU, sct_metrics

LOWER_IS_BETTER = {"MAE_body_HU": True, "MAE_bone_HU": True, "SSIM": False}


def per_slice(target: np.ndarray, recon: np.ndarray, body: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric of :data:`LOWER_IS_BETTER` for every slice alone (NaN: a slice without body, or without bone for bone MAE)."""
    rows: dict[str, list[float]] = {k: [] for k in LOWER_IS_BETTER}
    for k in range(target.shape[0]):
        if not body[k].any():
            for name in rows:
                rows[name].append(float("nan"))
            continue
        m = sct_metrics(target[k : k + 1], recon[k : k + 1], body[k : k + 1])
        has_bone = bool(((target[k] > BONE_HU) & body[k]).any())
        for name in rows:
            rows[name].append(m[name] if name != "MAE_bone_HU" or has_bone else float("nan"))
    return {k: np.asarray(v) for k, v in rows.items()}


def paired(a: np.ndarray, b: np.ndarray, lower_is_better: bool, resamples: int = 10_000) -> dict:
    """B − A over the slices both have: per slice, mean, 95 % bootstrap interval, and slices where B is better."""
    keep = np.isfinite(a) & np.isfinite(b)
    diff = (b - a)[keep]
    rng = np.random.default_rng(0)
    boot = diff[rng.integers(0, diff.size, (resamples, diff.size))].mean(axis=1)
    better = int((diff < 0).sum() if lower_is_better else (diff > 0).sum())
    return {"diff": diff, "mean": float(diff.mean()), "ci": np.percentile(boot, [2.5, 97.5]), "b_better": better, "n": int(diff.size)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", help="synthetic CT A (.npy, HU)")
    ap.add_argument("b", help="synthetic CT B (.npy, HU)")
    ap.add_argument("--pet", action="store_true", help="the held-out NAC-PET / CT pairs instead of the template")
    ap.add_argument("--slab", default=None, help="first,last held-out slice (default 28,43; 0,9 with --pet)")
    args = ap.parse_args()
    first, last = (int(v) for v in (args.slab or ("0,9" if args.pet else "28,43")).split(","))
    ct = (load_pet_case() if args.pet else load_case())[0]
    target = ct[first : last + 1]
    body = body_mask(target)
    a, b = (np.load(p, allow_pickle=False).astype(np.float32) for p in (args.a, args.b))
    if a.shape != target.shape or b.shape != target.shape:
        raise SystemExit(f"{args.a}, {args.b}: expected the slab's shape {target.shape}, got {a.shape} and {b.shape}")
    sa, sb = per_slice(target, a, body), per_slice(target, b, body)
    for name, lower in LOWER_IS_BETTER.items():
        p = paired(sa[name], sb[name], lower)
        print(
            f"{name}: B - A = {p['mean']:+.3g} (95 % CI {p['ci'][0]:+.3g} to {p['ci'][1]:+.3g}), B better on {p['b_better']} of "
            f"{p['n']} slices; per slice {np.round(p['diff'], 3).tolist()}"
        )


if __name__ == "__main__":
    main()
