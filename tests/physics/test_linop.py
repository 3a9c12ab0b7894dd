import pytest
import torch

from medrecon.physics import Identity, LinearOperator
from medrecon.physics.mri import FourierOperator, MaskOperator
from medrecon.physics.testing import check_adjoint, check_linearity, check_normal, check_operator


class Scale(LinearOperator):
    def __init__(self, a: complex, wrong_adjoint: bool = False):
        super().__init__()
        self.a = a
        self.wrong = wrong_adjoint

    def forward(self, x):
        return self.a * x

    def adjoint(self, y):
        return self.a * y if self.wrong else torch.conj(torch.tensor(self.a)) * y


def test_composition_and_adjoint_property():
    f = FourierOperator()
    m = MaskOperator((torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float())
    op = m @ f
    x = torch.randn(2, 16, 16, dtype=torch.complex64)
    assert torch.allclose(op(x), m(f(x)))
    assert torch.allclose(op.H(op(x)), op.normal(x), atol=1e-5)
    assert op.H.H is op
    check_operator(op, (2, 16, 16))
    check_operator(op.H, (2, 16, 16))


def test_checks_catch_a_wrong_adjoint():
    good = Scale(1.0 + 2.0j)
    check_adjoint(good, (4, 4))
    with pytest.raises(AssertionError, match="adjoint mismatch"):
        check_adjoint(Scale(1.0 + 2.0j, wrong_adjoint=True), (4, 4))


def test_checks_catch_nonlinearity_and_bad_normal():
    class Square(LinearOperator):
        def forward(self, x):
            return x * x

        def adjoint(self, y):
            return y

    with pytest.raises(AssertionError, match="linearity"):
        check_linearity(Square(), (8,))

    class BadNormal(Identity):
        def normal(self, x):
            return 2 * x

    with pytest.raises(AssertionError, match="normal"):
        check_normal(BadNormal(), (8,))


def test_buffers_follow_module_state():
    m = MaskOperator(torch.ones(4, 4))
    assert "weights" in m.state_dict() and m.mask is m.weights  # a Diagonal with real weights
    assert m.to(torch.float64).mask.dtype == torch.float64


@pytest.mark.parametrize("anchored", [False, True])
def test_slice_difference_values_and_adjoint(anchored):
    """Version j of slice s sits at row s·n + j; anchored adds the first slice itself (its difference to a fixed slice −1)."""
    from medrecon.physics.gradient import SliceDifference

    x = torch.arange(6.0).reshape(6, 1, 1) ** 2  # 3 slices × 2 versions: 0 1 | 4 9 | 16 25
    d = SliceDifference(2, anchored=anchored)(x).flatten().tolist()
    assert d == ([0.0, 1.0] if anchored else []) + [4.0, 8.0, 12.0, 16.0]
    check_operator(SliceDifference(2, anchored=anchored), (6, 3, 4), dtype=torch.float64)
