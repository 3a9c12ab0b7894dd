"""CT projection as a torch :class:`LinearOperator` on the ASTRA toolbox, with autograd.

- CPU, 2-D (``parallel``, ``fan``): ASTRA's CPU projectors (``linear`` for parallel, ``line_fanflat``
  for fan). Input and output torch tensors are *linked* into ASTRA (no copies); a batch of slices is
  projected slice by slice. Both are exact adjoints to float precision (checked by
  ``tests/ct/test_ct_projector.py``).
- CUDA: ASTRA's GPU projectors read and write torch GPU memory directly through
  ``astra.data3d.GPULink`` and ``astra.experimental.direct_FP3D/BP3D`` (no host copies). A batch of
  2-D parallel slices is one ``parallel3d`` call with one detector row per slice; 3-D
  ``parallel3d`` / ``cone`` volumes are native. The GPU back-projection is not the exact adjoint of
  the GPU projection (ray-driven forward, voxel-driven back-projection; the measured mismatch is in
  docs/results/ct.md, "The ``gpu`` tests"); the iterative solvers in
  :mod:`medrecon.tasks.ct.iterative` tolerate it (SIRT, preconditioned PDHG, CGLS restarted from
  the residual).
- ASTRA's 3-D geometries do not follow its 2-D angle convention: the ``parallel3d`` slab
  projects smooth images in a different orientation from the 2-D CPU projector (orientation, not
  scale: both agree with themselves and with their own FBP). The two candidate mappings (a
  rotation by π, or a reflection θ → −θ) are told apart once per process by a probe against the
  CPU projector (:func:`gpu_angle_convention`); the match is used for every CUDA geometry, so 2-D
  and 3-D scans share one convention. What was measured, and which mapping the probe picked, is in
  docs/results/ct.md ("Orientation of 2-D slices on ASTRA's 3-D GPU code" and "The ``gpu``
  tests"). If neither matches, 2-D slices on CUDA go through the CPU projector on host copies
  (correct, slower), as 2-D fan slices always do.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from ..linop import LinearOperator
from .geometry import CTGeometry

_ASTRA_LOCK = threading.Lock()  # ASTRA's object registry is global


def _require_astra():
    try:
        import astra
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("CT operators need the ASTRA toolbox: pip install 'medrecon[ct]' (astra-toolbox)") from err
    return astra


class _CPUProjector2D:
    """ASTRA CPU projector for one 2-D geometry; runs FP / BP on linked float32 arrays."""

    def __init__(self, geom: CTGeometry) -> None:
        astra = _require_astra()
        self.astra = astra
        self.vol_geom = geom.astra_vol_geom()
        self.proj_geom = geom.astra_proj_geom()
        kind = "linear" if geom.beam == "parallel" else "line_fanflat"
        self.pid = astra.create_projector(kind, self.proj_geom, self.vol_geom)

    def _run(self, alg: str, vol: np.ndarray, sino: np.ndarray) -> None:
        astra = self.astra
        with _ASTRA_LOCK:  # ASTRA's object registry is global: create / delete one at a time
            vid = astra.data2d.link("-vol", self.vol_geom, vol)
            sid = astra.data2d.link("-sino", self.proj_geom, sino)
            cfg = astra.astra_dict(alg)
            cfg["ProjectorId"] = self.pid
            cfg["VolumeDataId" if alg == "FP" else "ReconstructionDataId"] = vid
            cfg["ProjectionDataId"] = sid
            aid = astra.algorithm.create(cfg)
        try:
            astra.algorithm.run(aid)  # releases the GIL: slices of a batch run in parallel threads
        finally:
            with _ASTRA_LOCK:
                astra.algorithm.delete(aid)
                astra.data2d.delete([vid, sid])

    def _map(self, alg: str, vols: np.ndarray, sinos: np.ndarray) -> None:
        # ASTRA's CPU projectors are single-threaded; a batch uses one thread per core
        # (measured 2.0x on 2 cores, 512², 180 views).
        workers = min(len(vols), max(1, torch.get_num_threads()))
        if workers == 1:
            for b in range(len(vols)):
                self._run(alg, vols[b], sinos[b])
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda b: self._run(alg, vols[b], sinos[b]), range(len(vols))))

    def forward(self, x: np.ndarray, out: np.ndarray) -> None:
        self._map("FP", x, out)

    def adjoint(self, y: np.ndarray, out: np.ndarray) -> None:
        self._map("BP", out, y)

    def close(self) -> None:
        try:
            self.astra.projector.delete(self.pid)
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


def _in_pixel_units(geom: CTGeometry) -> tuple[CTGeometry, float]:
    """The same geometry with every length divided by the in-plane pixel pitch, and that pitch.

    ASTRA's documentation asks for lengths in voxel units on its 3-D GPU code; in pixel units the
    in-plane voxels are unit squares and line integrals in mm are ``p ×`` those in pixel units, for
    the projection and its transpose alike, so a ``parallel3d`` volume whose slices are thicker
    than its pixels projects as its slices do.
    """
    from dataclasses import replace

    p = float(geom.voxel_size_mm[-1])
    unit = replace(
        geom,
        voxel_size_mm=tuple(float(v) / p for v in geom.voxel_size_mm),
        det_spacing_mm=geom.det_spacing_mm / p,
        source_origin_mm=geom.source_origin_mm / p,
        origin_det_mm=geom.origin_det_mm / p,
        det_row_spacing_mm=geom.det_row_spacing_mm / p,
    )
    return unit, p


ANGLE_MAPS = ("none", "pi", "neg")
_CONVENTION: dict[str, str | None] = {}


def _map_angles(angles: tuple[float, ...], how: str) -> tuple[float, ...]:
    if how == "pi":
        return tuple(float(a) + np.pi for a in angles)
    if how == "neg":
        return tuple(-float(a) for a in angles)
    return tuple(float(a) for a in angles)


def cuda_geometry(geom: CTGeometry, angle_map: str | None = None) -> tuple[CTGeometry, float]:
    """The geometry ASTRA's GPU code is given for ``geom``: in pixel units (:func:`_in_pixel_units`)
    with the angles mapped by ``angle_map`` (default: :func:`gpu_angle_convention`, ``none`` if
    unknown), and the pixel pitch that scales results back to mm. Shared by the CUDA projectors and FDK."""
    from dataclasses import replace

    how = angle_map if angle_map is not None else (gpu_angle_convention() or "none")
    if how not in ANGLE_MAPS:
        raise ValueError(f"angle_map: expected one of {ANGLE_MAPS}, got {how!r}")
    unit, pitch = _in_pixel_units(geom)
    return replace(unit, angles_rad=_map_angles(unit.angles_rad, how)), pitch


def gpu_angle_convention() -> str | None:
    """How ASTRA's 3-D GPU angles must be mapped to reproduce its 2-D CPU projector, or ``None``.

    Probed once per process (one 32² parallel-beam slice, 12 views, each mapping of
    :data:`ANGLE_MAPS` against the CPU ``linear`` projector, see :func:`_probe_angle_map`) and cached.
    ``None`` when no GPU, no ASTRA CUDA, or no mapping matches.
    """
    if "v" in _CONVENTION:
        return _CONVENTION["v"]
    astra = _require_astra()
    found = _probe_angle_map(_CUDAProjector, "cuda") if torch.cuda.is_available() and astra.use_cuda() else None
    _CONVENTION["v"] = found
    return found


def _probe_angle_map(make_projector, device: str) -> str | None:
    """The mapping of :data:`ANGLE_MAPS` under which ``make_projector(geometry, how)`` reproduces the CPU projector.

    The probe is two smooth off-centre blobs (interpolation kernels of the CPU and GPU projectors
    differ little on smooth images; orientation errors show as tens of percent). Accepted: the
    best mapping if its relative difference is below 10 % and under half the runner-up's.
    """
    g = CTGeometry.create("parallel", (32, 32), (1.0, 1.0), 12)
    yy, xx = np.mgrid[:32, :32].astype(np.float32)
    x = (np.exp(-((yy - 8) ** 2 / 8 + (xx - 21) ** 2 / 18)) + 0.5 * np.exp(-((yy - 23) ** 2 / 14 + (xx - 9) ** 2 / 4)))[None]
    x = x.astype(np.float32)
    ref = np.zeros((1, *g.sino_shape), dtype=np.float32)
    cpu = _CPUProjector2D(g)
    cpu.forward(x, ref)
    cpu.close()
    xt = torch.from_numpy(x).to(device)
    errs = {}
    for how in ANGLE_MAPS:
        out = torch.zeros((1, *g.sino_shape), device=device)
        proj = make_projector(g, how)
        proj.forward(xt, out)
        proj.close()
        errs[how] = float(np.linalg.norm(out.cpu().numpy() - ref) / np.linalg.norm(ref))
    ranked = sorted(errs, key=errs.get)
    best, second = ranked[0], ranked[1]
    return best if errs[best] < 0.1 and errs[best] < 0.5 * errs[second] else None


class _HostProjector2D:
    """2-D slices on a CUDA device through the CPU projector on host copies (the safe fallback)."""

    def __init__(self, geom: CTGeometry) -> None:
        self.cpu = _CPUProjector2D(geom)

    def _run(self, fn, src: torch.Tensor, out: torch.Tensor) -> None:
        s = src.cpu().contiguous()
        o = torch.zeros(out.shape, dtype=torch.float32)
        fn(s.numpy(), o.numpy())
        out.copy_(o)

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> None:
        self._run(self.cpu.forward, x, out)

    def adjoint(self, y: torch.Tensor, out: torch.Tensor) -> None:
        self._run(self.cpu.adjoint, y, out)

    def close(self) -> None:
        self.cpu.close()


class _CUDAProjector:
    """ASTRA GPU projection straight on torch CUDA tensors (``GPULink`` + ``direct_FP3D/BP3D``).

    Runs in pixel units (:func:`_in_pixel_units`) and scales both directions by the pixel pitch;
    ``angle_map`` (one of :data:`ANGLE_MAPS`) maps medrecon's angles onto ASTRA's 3-D convention.
    """

    def __init__(self, geom: CTGeometry, angle_map: str = "none") -> None:
        astra = _require_astra()
        if not astra.use_cuda():
            raise RuntimeError("ASTRA was built without CUDA or sees no GPU; CT operators on 'cuda' are unavailable")
        self.astra = astra
        self.geom, self.pitch = cuda_geometry(geom, angle_map)
        self._cache: dict[int, tuple] = {}

    def _projector(self, n_slices: int | None):
        if n_slices not in self._cache:
            vg = self.geom.astra_vol_geom(n_slices)
            pg = self.geom.astra_proj_geom(n_slices)
            self._cache[n_slices] = (self.astra.create_projector("cuda3d", pg, vg), vg, pg)
        return self._cache[n_slices]

    @staticmethod
    def _link(t: torch.Tensor):
        import astra

        z, y, x = t.shape
        return astra.data3d.GPULink(t.data_ptr(), x, y, z, t.stride(-2) * t.element_size())

    def _apply(self, fp: bool, src: torch.Tensor, dst: torch.Tensor, n_slices: int | None) -> None:
        from astra import experimental

        pid, _, _ = self._projector(n_slices)
        vol, proj = (src, dst) if fp else (dst, src)
        with torch.cuda.device(src.device):
            torch.cuda.current_stream().synchronize()  # ASTRA runs on its own stream
            with _ASTRA_LOCK:
                (experimental.direct_FP3D if fp else experimental.direct_BP3D)(pid, self._link(vol), self._link(proj))

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> None:
        self._forward(x, out)
        out.mul_(self.pitch)

    def adjoint(self, y: torch.Tensor, out: torch.Tensor) -> None:
        self._adjoint(y, out)
        out.mul_(self.pitch)

    def _forward(self, x: torch.Tensor, out: torch.Tensor) -> None:
        if self.geom.is_3d:  # (B, z, y, x) -> (B, rows, views, det)
            for b in range(x.shape[0]):
                self._apply(True, x[b], out[b], None)
        elif self.geom.beam == "parallel":  # (B, y, x) -> (B, views, det) as one slab
            self._apply(True, x, out, x.shape[0])
        else:
            for b in range(x.shape[0]):
                self._apply(True, x[b : b + 1], out[b : b + 1], 1)

    def _adjoint(self, y: torch.Tensor, out: torch.Tensor) -> None:
        if self.geom.is_3d:
            for b in range(y.shape[0]):
                self._apply(False, y[b], out[b], None)
        elif self.geom.beam == "parallel":
            self._apply(False, y, out, y.shape[0])
        else:
            for b in range(y.shape[0]):
                self._apply(False, y[b : b + 1], out[b : b + 1], 1)

    def close(self) -> None:
        for pid, _, _ in self._cache.values():
            try:
                self.astra.projector3d.delete(pid)
            except Exception:  # pragma: no cover
                pass


class _Project(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, op: CTProjector, adjoint: bool) -> torch.Tensor:  # type: ignore[override]
        ctx.op, ctx.adjoint = op, adjoint
        return op._project(x, adjoint)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.op._project(grad.contiguous(), not ctx.adjoint), None, None


class CTProjector(LinearOperator):
    """Projection ``A`` (forward) and back-projection ``Aᵀ`` (adjoint) for a :class:`CTGeometry`.

    Shapes (float32): 2-D beams ``x (B, rows, cols) -> y (B, views, det)``; 3-D beams
    ``x (B, slices, rows, cols) -> y (B, det_rows, views, det)``. The device of the input picks the
    backend (CPU: ASTRA CPU, 2-D only; CUDA: ASTRA GPU). Autograd works through both directions.
    """

    def __init__(self, geometry: CTGeometry) -> None:
        super().__init__()
        if not isinstance(geometry, CTGeometry):
            raise TypeError(f"geometry: expected a CTGeometry, got {type(geometry).__name__}")
        self.geometry = geometry
        self._backends: dict[str, object] = {}

    def _backend(self, device: torch.device):
        key = f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu"
        if key not in self._backends:
            if device.type == "cuda":
                how = gpu_angle_convention()
                if not self.geometry.is_3d and (self.geometry.beam == "fan" or how is None):
                    self._backends[key] = _HostProjector2D(self.geometry)
                else:
                    if how is None:
                        warnings.warn(
                            "ASTRA's 3-D angle convention could not be matched to its 2-D one; 3-D scans keep ASTRA's own", stacklevel=3
                        )
                    self._backends[key] = _CUDAProjector(self.geometry, how or "none")
            elif self.geometry.is_3d:
                raise ValueError(f"beam {self.geometry.beam!r}: ASTRA projects 3-D geometries on CUDA only; move the volume to a GPU")
            else:
                self._backends[key] = _CPUProjector2D(self.geometry)
        return self._backends[key]

    def _check(self, t: torch.Tensor, shape: tuple[int, ...], what: str) -> torch.Tensor:
        if t.is_complex():
            raise TypeError(f"{what}: expected a real tensor, got {t.dtype}")
        if t.ndim != len(shape) + 1 or tuple(t.shape[1:]) != tuple(shape):
            raise ValueError(f"{what}: expected shape (B, {', '.join(map(str, shape))}), got {tuple(t.shape)}")
        return t.detach().to(torch.float32).contiguous()

    def _project(self, t: torch.Tensor, adjoint: bool) -> torch.Tensor:
        g = self.geometry
        src_shape, dst_shape = (g.sino_shape, g.image_shape) if adjoint else (g.image_shape, g.sino_shape)
        src = self._check(t, src_shape, "sinogram" if adjoint else "image")
        out = torch.zeros((src.shape[0], *dst_shape), dtype=torch.float32, device=src.device)
        be = self._backend(src.device)
        if src.device.type == "cuda":
            (be.adjoint if adjoint else be.forward)(src, out)
        else:
            (be.adjoint if adjoint else be.forward)(src.numpy(), out.numpy())
        return out.to(t.dtype) if t.dtype == torch.float64 else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project: ``(B, *image_shape) -> (B, *sino_shape)``."""
        return _Project.apply(x, self, False)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Back-project: ``(B, *sino_shape) -> (B, *image_shape)``."""
        return _Project.apply(y, self, True)

    def __del__(self) -> None:
        for be in getattr(self, "_backends", {}).values():
            be.close()
