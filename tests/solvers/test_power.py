import pytest
import torch

from medrecon.physics.mri import MaskOperator, SenseOperator
from medrecon.solvers.power import operator_norm


def test_operator_norm_real_and_complex():
    assert operator_norm(MaskOperator(torch.tensor([0.1, 0.5, 0.3])), torch.zeros(1, 3), iters=60) == pytest.approx(0.5, rel=1e-4)
    mask = torch.zeros(1, 1, 1, 16)
    mask[..., ::3] = 1
    op = SenseOperator(torch.ones(1, 1, 16, 16, dtype=torch.complex64) * 0.5, mask)
    assert operator_norm(op, torch.zeros(1, 16, 16, dtype=torch.complex64)) == pytest.approx(0.5, rel=1e-3)
