import pytest
import torch

from medrecon.solvers.cg import conjugate_gradient


def test_cg_solves_complex_hermitian_system():
    g = torch.Generator().manual_seed(0)
    n = 12
    a = torch.complex(torch.randn(3, n, n, generator=g, dtype=torch.float64), torch.randn(3, n, n, generator=g, dtype=torch.float64))
    h = a.conj().transpose(1, 2) @ a + 0.5 * torch.eye(n, dtype=torch.complex128)  # HPD, not symmetric
    b = torch.complex(torch.randn(3, n, generator=g, dtype=torch.float64), torch.randn(3, n, generator=g, dtype=torch.float64))
    x = conjugate_gradient(lambda v: (h @ v.unsqueeze(-1)).squeeze(-1), b, iters=60, damping=0.1)
    ref = torch.linalg.solve(h + 0.1 * torch.eye(n, dtype=torch.complex128), b)
    assert torch.allclose(x, ref, atol=1e-8)


def test_cg_early_stop_and_warm_start():
    h = torch.diag(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    b = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    f = lambda v: v @ h  # noqa: E731
    x = conjugate_gradient(f, b, iters=10, tol=1e-12)
    assert torch.allclose(x, b / torch.diagonal(h))
    assert torch.equal(conjugate_gradient(f, b, x0=x, iters=0), x)
    with pytest.raises(ValueError, match="iters"):
        conjugate_gradient(f, b, iters=-1)
