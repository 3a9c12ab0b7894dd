"""CT on a GPU: medrecon's operators on torch GPU memory against ASTRA on host NumPy arrays.

Run (needs CUDA and ASTRA with CUDA):  python benchmarks/bench_ct_gpu.py [--repeats R]
Writes benchmarks/results/ct_gpu.md.

- 2-D parallel beam 512², 720 views: forward, back-projection, FBP (ram-lak), one slice and a
  batch of 64 slices. ASTRA baseline: what a user calls on host arrays — ``astra.create_sino`` /
  ``create_backprojection`` with the ``cuda`` projector and ``FBP_CUDA`` per slice, and for the
  batch also one ``create_sino3d_gpu`` / ``create_backprojection3d_gpu`` call on the stacked slices.
- 3-D cone beam 256³, 360 views: forward, back-projection, FDK. ASTRA baseline:
  ``create_sino3d_gpu`` / ``create_backprojection3d_gpu`` / ``FDK_CUDA`` on host arrays.
Every row also gives the relative difference between the two results. ASTRA's 3-D baselines get
the geometry medrecon hands ASTRA's GPU code (pixel units, angles mapped to ASTRA's 3-D convention
by ``medrecon.physics.ct.projector.cuda_geometry``), so they should agree to ~0; the 1-slice rows
compare against ASTRA's 2-D GPU projector, the reference orientation (~1e-3 expected from
interpolation kernels; a wrong orientation shows as tens of percent on the smooth test images).
Times: best of R after a warm-up, with ``torch.cuda.synchronize``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def _best(fn, repeats: int) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _astra3d(astra, fp: bool, data: np.ndarray, g, n_slices: int | None = None) -> np.ndarray:
    """ASTRA's 3-D GPU forward (``fp``) or back-projection on host arrays, for ``cuda_geometry(g)``, in mm."""
    from medrecon.physics.ct.projector import cuda_geometry

    unit, pitch = cuda_geometry(g)
    vg, pg = unit.astra_vol_geom(n_slices), unit.astra_proj_geom(n_slices)
    i, out = astra.create_sino3d_gpu(data, pg, vg) if fp else astra.create_backprojection3d_gpu(data, pg, vg)
    astra.data3d.delete(i)
    return out * pitch


def _smooth(shape: tuple[int, ...], rng) -> np.ndarray:
    """Smooth random blobs plus a little noise: orientation errors show, unlike on pure noise."""
    grids = np.meshgrid(*[np.linspace(-1, 1, n, dtype=np.float32) for n in shape], indexing="ij")
    out = np.zeros(shape, dtype=np.float32)
    for _ in range(6):
        c = rng.uniform(-0.6, 0.6, len(shape))
        out += np.exp(-sum((q - cc) ** 2 for q, cc in zip(grids, c)) / (2 * rng.uniform(0.05, 0.3) ** 2))
    return out + 0.05 * rng.random(shape, dtype=np.float32)


def _astra_fbp_2d(astra, g, sino: np.ndarray) -> np.ndarray:
    vg, pg = g.astra_vol_geom(), g.astra_proj_geom()
    sid = astra.data2d.create("-sino", pg, sino)
    rid = astra.data2d.create("-vol", vg)
    cfg = astra.astra_dict("FBP_CUDA")
    cfg.update(ProjectionDataId=sid, ReconstructionDataId=rid, option={"FilterType": "ram-lak"})
    aid = astra.algorithm.create(cfg)
    astra.algorithm.run(aid)
    out = astra.data2d.get(rid)
    astra.algorithm.delete(aid)
    astra.data2d.delete([sid, rid])
    return out


def _astra_fdk(astra, g, sino: np.ndarray) -> np.ndarray:
    from medrecon.physics.ct.projector import cuda_geometry

    unit, pitch = cuda_geometry(g)
    vg, pg = unit.astra_vol_geom(), unit.astra_proj_geom()
    sid = astra.data3d.create("-sino", pg, sino)
    rid = astra.data3d.create("-vol", vg)
    cfg = astra.astra_dict("FDK_CUDA")
    cfg.update(ProjectionDataId=sid, ReconstructionDataId=rid)
    aid = astra.algorithm.create(cfg)
    astra.algorithm.run(aid)
    out = astra.data3d.get(rid) / pitch
    astra.algorithm.delete(aid)
    astra.data3d.delete([sid, rid])
    return out


def main() -> None:
    import astra

    from medrecon.physics.ct import CTGeometry, CTProjector
    from medrecon.tasks.ct.fbp import fbp, fdk

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    if not (torch.cuda.is_available() and astra.use_cuda()):
        raise SystemExit("bench_ct_gpu: needs a CUDA GPU and ASTRA with CUDA")
    r, nb = args.repeats, args.batch
    rows: list[tuple[str, str, float, float, float]] = []  # case, op, astra s, medrecon s, rel diff
    rng = np.random.default_rng(0)

    # 2-D parallel, 512², 720 views
    g = CTGeometry.create("parallel", (512, 512), (1.0, 1.0), 720)
    op = CTProjector(g)
    x = np.stack([_smooth((512, 512), rng) for _ in range(nb)])
    xt = torch.from_numpy(x).cuda()
    pid = astra.create_projector("cuda", g.astra_proj_geom(), g.astra_vol_geom())

    def a_fp1():
        i, s = astra.create_sino(x[0], pid)
        astra.data2d.delete(i)
        return s

    def a_bp1(sino):
        i, v = astra.create_backprojection(sino, pid)
        astra.data2d.delete(i)
        return v

    with torch.no_grad():
        y1 = a_fp1()
        yt = op(xt)
        rows.append(("2-D 512², 720 views, 1 slice", "forward", _best(a_fp1, r), _best(lambda: op(xt[:1]), r), _rel(yt[0].cpu(), y1)))
        rows.append(
            (
                "2-D 512², 720 views, 1 slice",
                "back-projection",
                _best(lambda: a_bp1(y1), r),
                _best(lambda: op.adjoint(yt[:1]), r),
                _rel(op.adjoint(yt[:1])[0].cpu(), a_bp1(y1)),
            )
        )
        rows.append(
            (
                "2-D 512², 720 views, 1 slice",
                "FBP ram-lak",
                _best(lambda: _astra_fbp_2d(astra, g, y1), r),
                _best(lambda: fbp(yt[:1], g), r),
                _rel(fbp(yt[:1], g)[0].cpu(), _astra_fbp_2d(astra, g, y1)),
            )
        )
        rows.append(
            (
                f"2-D 512², 720 views, {nb} slices",
                "forward (ASTRA per slice)",
                _best(lambda: [astra.data2d.delete(astra.create_sino(x[b], pid)[0]) for b in range(nb)], 1),
                _best(lambda: op(xt), r),
                float("nan"),
            )
        )

        def a_fp3():
            return _astra3d(astra, True, x, g, nb)

        def a_bp3(s):
            return _astra3d(astra, False, s, g, nb)

        s3 = a_fp3()
        rows.append(
            (f"2-D 512², 720 views, {nb} slices", "forward (ASTRA 3-D call)", _best(a_fp3, r), _best(lambda: op(xt), r), _rel(yt.cpu(), s3))
        )
        rows.append(
            (
                f"2-D 512², 720 views, {nb} slices",
                "back-projection (ASTRA 3-D call)",
                _best(lambda: a_bp3(s3), r),
                _best(lambda: op.adjoint(yt), r),
                _rel(op.adjoint(yt).cpu(), a_bp3(s3)),
            )
        )
        rows.append(
            (
                f"2-D 512², 720 views, {nb} slices",
                "FBP (ASTRA FBP_CUDA per slice)",
                _best(lambda: [_astra_fbp_2d(astra, g, s3[b]) for b in range(nb)], 1),
                _best(lambda: fbp(yt, g), r),
                float("nan"),
            )
        )
    astra.projector.delete(pid)

    # 3-D cone, 256³, 360 views
    gc = CTGeometry.create("cone", (256, 256, 256), (1.0, 1.0, 1.0), 360, source_origin_mm=600.0, origin_det_mm=400.0)
    opc = CTProjector(gc)
    zz, yy, xx = np.mgrid[:256, :256, :256].astype(np.float32) - 127.5
    vol = ((zz**2 + yy**2 + xx**2) < 100**2).astype(np.float32) * 0.02 + 0.01 * rng.random((256, 256, 256), dtype=np.float32)
    vt = torch.from_numpy(vol)[None].cuda()

    def c_fp():
        return _astra3d(astra, True, vol, gc)

    def c_bp(s):
        return _astra3d(astra, False, s, gc)

    with torch.no_grad():
        sc = c_fp()
        st = opc(vt)
        case = "3-D cone 256³, 360 views"
        rows.append((case, "forward", _best(c_fp, r), _best(lambda: opc(vt), r), _rel(st[0].cpu(), sc)))
        rows.append(
            (
                case,
                "back-projection",
                _best(lambda: c_bp(sc), r),
                _best(lambda: opc.adjoint(st), r),
                _rel(opc.adjoint(st)[0].cpu(), c_bp(sc)),
            )
        )
        rows.append(
            (
                case,
                "FDK",
                _best(lambda: _astra_fdk(astra, gc, sc), r),
                _best(lambda: fdk(st, gc), r),
                _rel(fdk(st, gc)[0].cpu(), _astra_fdk(astra, gc, sc)),
            )
        )

    dev = torch.cuda.get_device_name()
    lines = [
        f"{dev}, astra {astra.__version__}, torch {torch.__version__}; best of {r} (ASTRA per-slice loops: 1 run). "
        "medrecon: torch tensors on the GPU; ASTRA: host NumPy arrays (copies included).\n",
        "| case | operation | ASTRA host ms | medrecon GPU ms | speed-up | rel. diff |",
        "|---|---|---|---|---|---|",
    ]
    for case, what, ta, tm, rel in rows:
        lines.append(f"| {case} | {what} | {ta * 1e3:.2f} | {tm * 1e3:.2f} | {ta / tm:.1f}× | {'–' if np.isnan(rel) else f'{rel:.1e}'} |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    (Path(__file__).parent / "results" / "ct_gpu.md").write_text(text)


if __name__ == "__main__":
    main()
