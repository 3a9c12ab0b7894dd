import numpy as np
import pytest
import torch

from medrecon.physics.ct import CTGeometry, CTProjector
from medrecon.physics.testing import check_operator

pytest.importorskip("astra")

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
        CTProjector(CTGeometry.create("cone", (8, 16, 16), (1, 1, 1), 10, source_origin_mm=300, origin_det_mm=100))(torch.zeros(1, 8, 16, 16))


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(GEOMS))
def test_cuda_matches_cpu(name):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA without CUDA")
    g = CTGeometry.create(**GEOMS[name])
    op = CTProjector(g)
    x = torch.rand(3, *g.image_shape)
    ref = op(x)
    got = op(x.cuda()).cpu()
    assert torch.allclose(got, ref, rtol=0.05, atol=0.05 * float(ref.abs().max()))
    err = check_operator(op, (3, *g.image_shape), torch.float32, device="cuda", rtol=0.05)
    print(name, "CUDA adjoint mismatch", err["adjoint"])


@pytest.mark.gpu
def test_cone_beam_cuda_projector_and_fdk():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA")
    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA without CUDA")
    from medrecon.recon.ct_fbp import fdk

    g = CTGeometry.create("cone", (32, 64, 64), (1.0, 1.0, 1.0), 180, source_origin_mm=400.0, origin_det_mm=200.0)
    op = CTProjector(g)
    zz, yy, xx = np.mgrid[:32, :64, :64]
    ball = (((zz - 15.5) ** 2 + (yy - 31.5) ** 2 + (xx - 31.5) ** 2) < 12**2).astype(np.float32) * 0.02
    x = torch.from_numpy(ball)[None].cuda()
    err = check_operator(op, (1, 32, 64, 64), torch.float32, device="cuda", rtol=0.05)
    print("cone CUDA adjoint mismatch", err["adjoint"])
    r = fdk(op(x), g)
    rel = float(torch.linalg.vector_norm(r - x) / torch.linalg.vector_norm(x))
    print("FDK relative error", rel)
    assert rel < 0.3
