import numpy as np
import pytest
import torch

from medrecon.physics.ct import CTGeometry, CTProjector
from medrecon.physics.testing import check_operator

GEOMS = {
    "parallel": dict(beam="parallel", image_shape=(48, 48), voxel_size_mm=(0.8, 0.8), n_views=60),
    "parallel-limited": dict(beam="parallel", image_shape=(48, 40), voxel_size_mm=(1.0, 1.0), n_views=45, arc_deg=90),
    "fan": dict(beam="fan", image_shape=(48, 48), voxel_size_mm=(0.8, 0.8), n_views=72, source_origin_mm=300.0, origin_det_mm=200.0),
}


@pytest.mark.parametrize("name", list(GEOMS))
def test_cpu_projector_contract(name):
    g = CTGeometry.create(**GEOMS[name])
    errs = check_operator(CTProjector(g), (3, *g.image_shape), torch.float32)
    assert errs["adjoint"] < 1e-5


def test_physical_units_disk_line_integral():
    n, v = 128, 0.5
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * v
    disk = ((xx**2 + yy**2) < 10.0**2).astype(np.float32) * 0.02  # μ = 0.02 / mm, radius 10 mm
    s = CTProjector(CTGeometry.create("parallel", (n, n), (v, v), 8))(torch.from_numpy(disk)[None])
    assert float(s.max()) == pytest.approx(2 * 10 * 0.02, rel=0.03)


def test_matches_astra_directly():
    import astra

    g = CTGeometry.create("parallel", (64, 64), (1.0, 1.0), 30)
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    pid = astra.create_projector("linear", g.astra_proj_geom(), g.astra_vol_geom())
    sid, ref = astra.create_sino(x, pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    got = CTProjector(g)(torch.from_numpy(x)[None])[0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_autograd_matches_adjoint():
    g = CTGeometry.create(**GEOMS["parallel"])
    op = CTProjector(g)
    x = torch.rand(2, 48, 48, requires_grad=True)
    op(x).pow(2).sum().backward()
    assert torch.allclose(x.grad, 2 * op.adjoint(op(x.detach())), rtol=1e-4, atol=1e-4)


def test_geometry_json_roundtrip_and_errors():
    g = CTGeometry.create(**GEOMS["fan"])
    assert CTGeometry.from_json(g.to_json()) == g
    assert g.arc_deg == pytest.approx(360.0)
    assert CTGeometry.create(**GEOMS["parallel-limited"]).arc_deg == pytest.approx(90.0)
    with pytest.raises(ValueError, match="beam"):
        CTGeometry.create("helical", (8, 8), (1, 1), 10)
    with pytest.raises(ValueError, match="square pixels"):
        CTGeometry.create("parallel", (8, 8), (1, 2), 10)
    with pytest.raises(ValueError, match="source_origin_mm"):
        CTGeometry.create("fan", (8, 8), (1, 1), 10)
    with pytest.raises(ValueError, match="unknown keys"):
        CTGeometry.from_json('{"beam": "parallel", "bogus": 1}')
    op = CTProjector(CTGeometry.create(**GEOMS["parallel"]))
    with pytest.raises(ValueError, match=r"image: expected shape \(B, 48, 48\)"):
        op(torch.zeros(1, 40, 48))
    with pytest.raises(ValueError, match="CUDA only"):
        CTProjector(CTGeometry.create("cone", (8, 16, 16), (1, 1, 1), 10, source_origin_mm=300, origin_det_mm=100))(
            torch.zeros(1, 8, 16, 16)
        )


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(GEOMS))
def test_cuda_matches_cpu(name):
    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA without CUDA")
    from medrecon.physics.ct.projector import gpu_angle_convention

    print("ASTRA 3-D angle mapping found by the probe:", gpu_angle_convention())
    g = CTGeometry.create(**GEOMS[name])
    op = CTProjector(g)
    x = _smooth_images(3, g.image_shape)  # GPU and CPU interpolation kernels differ on pixel noise
    ref, got = op(x), op(x.cuda()).cpu()
    rel = float(torch.linalg.vector_norm(got - ref) / torch.linalg.vector_norm(ref))
    y = ref
    bref, bgot = op.adjoint(y), op.adjoint(y.cuda()).cpu()
    rel_bp = float(torch.linalg.vector_norm(bgot - bref) / torch.linalg.vector_norm(bref))
    err = check_operator(op, (3, *g.image_shape), torch.float32, device="cuda", rtol=0.05)
    print(name, f"CUDA vs CPU: forward {rel:.1e}, back-projection {rel_bp:.1e}; CUDA adjoint mismatch {err['adjoint']:.1e}")
    assert rel < 0.02 and rel_bp < 0.02


def _smooth_images(n: int, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    grids = torch.meshgrid(*[torch.linspace(-1, 1, k) for k in shape], indexing="ij")
    out = torch.zeros(n, *shape)
    for i in range(n):
        for _ in range(4):
            c = torch.rand(len(shape), generator=g) - 0.5
            r = 0.15 + 0.2 * float(torch.rand(1, generator=g))
            out[i] += torch.exp(-sum((q - cc) ** 2 for q, cc in zip(grids, c)) / (2 * r * r))
    return out


@pytest.mark.gpu
def test_cuda_anisotropic_3d_volume_matches_slab_of_slices():
    """A parallel3d volume with 2 mm slices of 0.8 mm pixels projects like its slices one by one."""
    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA without CUDA")
    g3 = CTGeometry.create("parallel3d", (6, 40, 40), (2.0, 0.8, 0.8), 30)
    g2 = CTGeometry.create("parallel", (40, 40), (0.8, 0.8), 30)
    assert g3.n_det == g2.n_det and g3.n_det_rows == 6 and abs(g3.det_row_spacing_mm - 2.0) < 1e-9
    x = _smooth_images(1, (6, 40, 40)).cuda()
    y3 = CTProjector(g3)(x)[0]  # (rows, views, det)
    y2 = CTProjector(g2)(x[0])  # (slices, views, det)
    rel = float(torch.linalg.vector_norm(y3 - y2) / torch.linalg.vector_norm(y2))
    print("parallel3d anisotropic vs slab", rel)
    assert rel < 0.02


@pytest.mark.gpu
@pytest.mark.parametrize("voxel", [1.0, 0.5])
def test_cone_beam_cuda_projector_and_fdk(voxel):
    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA without CUDA")
    from medrecon.tasks.ct.fbp import fdk

    g = CTGeometry.create("cone", (32, 64, 64), (voxel,) * 3, 180, source_origin_mm=400.0 * voxel, origin_det_mm=200.0 * voxel)
    op = CTProjector(g)
    zz, yy, xx = np.mgrid[:32, :64, :64]
    ball = (((zz - 15.5) ** 2 + (yy - 31.5) ** 2 + (xx - 31.5) ** 2) < 12**2).astype(np.float32) * 0.02
    x = torch.from_numpy(ball)[None].cuda()
    err = check_operator(op, (1, 32, 64, 64), torch.float32, device="cuda", rtol=0.05)
    print("cone CUDA adjoint mismatch", err["adjoint"])
    r = fdk(op(x), g)
    rel = float(torch.linalg.vector_norm(r - x) / torch.linalg.vector_norm(x))
    print(f"voxel {voxel} mm: FDK relative error", rel)
    assert rel < 0.3


@pytest.mark.parametrize("convention, expected", [("same", "none"), ("rotated", "pi"), ("mirrored", "neg"), ("transposed", None)])
def test_angle_probe_finds_the_mapping_that_undoes_a_convention(convention, expected):
    """The probe behind the CUDA projectors picks the angle mapping that turns a projector with
    another orientation convention (simulated here on the CPU) back into the 2-D one — or none."""
    from dataclasses import replace

    from medrecon.physics.ct.projector import _CPUProjector2D, _map_angles, _probe_angle_map

    class Other:  # a projector whose volume axes differ from ASTRA 2-D's as `convention` says
        def __init__(self, g, how):
            self.p = _CPUProjector2D(replace(g, angles_rad=_map_angles(g.angles_rad, how)))

        def forward(self, x, out):
            v = x.numpy()
            v = {"same": v, "rotated": v[:, ::-1, ::-1], "mirrored": v[:, ::-1, :], "transposed": v.transpose(0, 2, 1)}[convention]
            o = np.zeros(out.shape, dtype=np.float32)
            self.p.forward(np.ascontiguousarray(v), o)
            out.copy_(torch.from_numpy(o))

        def close(self):
            self.p.close()

    assert _probe_angle_map(Other, "cpu") == expected
