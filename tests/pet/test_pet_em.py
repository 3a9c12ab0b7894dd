"""PET emission physics and classical reconstruction, pinned to references (dense algebra, autograd, SciPy)."""

import math

import numpy as np
import pytest
import torch

from medrecon.physics.ct import CTGeometry, CTProjector
from medrecon.physics.pet import EmissionOperator, attenuation_factors, hu_to_mu_511
from medrecon.physics.testing import check_operator
from medrecon.tasks.pet.em import gaussian_postfilter, map_em_rdp, osem, rdp_gradient, rdp_penalty, subset_views


def _geom(n=12, views=30, px=2.0):
    return CTGeometry.create("parallel", (n, n), (px, px), views)


def _phantom(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((1, n, n), generator=g) + 0.2
    yy, xx = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
    return x * ((yy**2 + xx**2) < (n / 2) ** 2)


def test_emission_operator_contract():
    geom = _geom(24, 36)
    m = torch.rand((2, *geom.sino_shape), generator=torch.Generator().manual_seed(1)) + 0.1
    errs = check_operator(EmissionOperator(geom, m), (2, 24, 24), torch.float32)
    assert errs["adjoint"] < 1e-5 and errs["linearity"] < 1e-5


def test_hu_to_mu_511_bilinear_golden_values():
    hu = torch.tensor([-1000.0, -2000.0, 0.0, 47.0, 1000.0])
    mu = hu_to_mu_511(hu)
    assert mu[0] == 0 and mu[1] == 0
    assert float(mu[2]) == pytest.approx(0.0096)
    assert float(mu[4]) == pytest.approx((5.10e-5 * 2000 + 4.71e-2) / 10, rel=1e-6)  # Carney 2006, 120 kVp
    below, above = hu_to_mu_511(torch.tensor([46.999, 47.001]))
    assert float(above) == pytest.approx(float(below), rel=2e-3)  # continuous at the break point


def test_attenuation_factor_through_a_water_disk():
    n, px, r = 128, 1.0, 40.0
    yy, xx = (np.mgrid[:n, :n] - (n - 1) / 2) * px
    mu = torch.from_numpy(((xx**2 + yy**2) < r**2).astype(np.float32) * 0.0096)[None]
    a = attenuation_factors(CTProjector(CTGeometry.create("parallel", (n, n), (px, px), 8)), mu)
    assert float(a.min()) == pytest.approx(math.exp(-2 * r * 0.0096), rel=0.02)  # central ray
    assert float(a.max()) == pytest.approx(1.0)


def test_subsets_cover_every_view_once():
    for n, s in ((30, 1), (30, 6), (32, 8), (7, 7)):
        v = torch.cat(subset_views(n, s))
        assert sorted(v.tolist()) == list(range(n))
    with pytest.raises(ValueError):
        subset_views(10, 11)


def _dense(op, n):
    cols = [op(torch.eye(n * n)[j].reshape(1, n, n)).reshape(-1) for j in range(n * n)]
    return torch.stack(cols, 1).double().numpy()


def test_mlem_equals_dense_reference_and_increases_likelihood():
    n, geom = 12, _geom()
    m = torch.rand((1, *geom.sino_shape), generator=torch.Generator().manual_seed(2)) * 0.5 + 0.5
    op = EmissionOperator(geom, m)
    x_true = _phantom(n) * 50
    r = torch.full((1, *geom.sino_shape), 0.5)
    y = torch.poisson(op(x_true) + r, generator=torch.Generator().manual_seed(3))
    A, yv, rv = _dense(op, n), y.reshape(-1).double().numpy(), r.reshape(-1).double().numpy()
    x0 = torch.full((1, n, n), float(x_true.mean()))
    xd = x0.reshape(-1).double().numpy()
    sens = A.T @ np.ones_like(yv)
    lik = []
    for _ in range(5):
        xd = xd / sens * (A.T @ (yv / (A @ xd + rv)))
        ybar = A @ xd + rv
        lik.append(float(np.sum(yv * np.log(ybar) - ybar)))
    got = osem(op, y, r, iterations=5, subsets=1, x0=x0)
    np.testing.assert_allclose(got.reshape(-1).numpy(), xd, rtol=2e-4, atol=1e-4 * xd.max())
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(lik, lik[1:], strict=False))  # MLEM's monotone likelihood


def test_osem_converges_on_consistent_data():
    n, geom = 12, _geom()
    op = EmissionOperator(geom)
    x_true = _phantom(n) * 10
    y, r = op(x_true), torch.zeros((1, *geom.sino_shape))
    x = osem(op, y, r, iterations=300, subsets=5)
    support = x_true > 0
    assert float((x - x_true)[support].norm() / x_true[support].norm()) < 0.05
    assert float(x[~support].abs().max()) < 0.05 * float(x_true.max())


def test_rdp_gradient_matches_autograd():
    x = torch.rand((2, 10, 11), dtype=torch.float64, generator=torch.Generator().manual_seed(4)) + 0.05
    x.requires_grad_(True)
    (auto,) = torch.autograd.grad(rdp_penalty(x, gamma=2.0).sum(), x)
    ours = rdp_gradient(x.detach(), gamma=2.0)
    np.testing.assert_allclose(ours[:, 1:-1, 1:-1].numpy(), auto[:, 1:-1, 1:-1].numpy(), rtol=1e-6, atol=1e-9)


def _objective(op, y, r, x, b):
    ybar = op(x) + r
    return float((y * torch.log(ybar) - ybar).sum() - b * rdp_penalty(x).sum())


def test_map_em_converges_to_the_map_image():
    n, geom = 12, _geom()
    op = EmissionOperator(geom)
    y = torch.poisson(op(_phantom(n) * 5) + 0.2, generator=torch.Generator().manual_seed(5))
    r = torch.full_like(y, 0.2)
    beta = 0.05
    sens = op.sensitivity(1)
    b = beta * float(sens[sens > 1e-6 * sens.max()].mean())
    x = map_em_rdp(op, y, r, beta, iterations=150, subsets=1)
    x_sub = map_em_rdp(op, y, r, beta, iterations=150, subsets=4)
    start = osem(op, y, r, 1, 1)
    assert _objective(op, y, r, x, b) > _objective(op, y, r, start, b)
    # KKT of max Φ s.t. x ≥ 0 where x is clearly positive: the gradient vanishes
    x.requires_grad_(True)
    ybar = op(x) + r
    phi = (y * torch.log(ybar) - ybar).sum() - b * rdp_penalty(x).sum()
    (g,) = torch.autograd.grad(phi, x)
    inner = torch.zeros_like(x, dtype=torch.bool)
    inner[:, 1:-1, 1:-1] = True
    pos = (x.detach() > 0.2 * float(x.max())) & inner
    assert float(g[pos].abs().max()) < 2e-2 * float(sens.max())
    # ordered subsets reach the same image (relaxed steps)
    assert float((x_sub - x.detach()).norm() / x.detach().norm()) < 0.05


def test_map_em_beta_smooths():
    n, geom = 12, _geom()
    op = EmissionOperator(geom)
    y = torch.poisson(op(_phantom(n) * 5), generator=torch.Generator().manual_seed(5))
    r = torch.zeros_like(y)
    a = map_em_rdp(op, y, r, beta=0.0, iterations=10, subsets=3)
    c = map_em_rdp(op, y, r, beta=0.1, iterations=10, subsets=3)
    assert float(rdp_penalty(c)) < 0.8 * float(rdp_penalty(a))
    with pytest.raises(ValueError, match="beta"):
        map_em_rdp(op, y, r, beta=-1.0)


def test_gaussian_postfilter_matches_scipy():
    from scipy.ndimage import gaussian_filter

    x = torch.rand((1, 40, 40), generator=torch.Generator().manual_seed(6))
    got = gaussian_postfilter(x, fwhm_mm=6.0, pixel_mm=2.0)[0].numpy()
    ref = gaussian_filter(x[0].numpy().astype(np.float64), sigma=6.0 / 2.3548200450309493 / 2.0, truncate=4.0)
    np.testing.assert_allclose(got[8:-8, 8:-8], ref[8:-8, 8:-8], atol=5e-5)
