import numpy as np
import pytest
import torch

from medrecon.physics.mri import SenseOperator
from medrecon.physics.testing import check_operator


def _rand(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return torch.complex(torch.randn(shape, generator=g, dtype=real), torch.randn(shape, generator=g, dtype=real))


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("batch_maps", [1, 3])
def test_sense_2d_contract(dtype, batch_maps):
    maps = _rand((batch_maps, 4, 20, 18), dtype, 0)
    mask = (torch.rand(1, 1, 1, 18, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    op = SenseOperator(maps, mask)
    errs = check_operator(op, (3, 20, 18), dtype)
    assert op(_rand((3, 20, 18), dtype, 2)).shape == (3, 4, 20, 18)
    assert max(errs.values()) < (1e-5 if dtype == torch.complex64 else 1e-12)


@pytest.mark.parametrize("shape", [(15, 9), (16, 9), (14, 12)])
def test_sense_odd_and_even_sizes_agree_with_plain_centred_fft(shape):
    """Even sizes use the checkerboard-folded FFT, odd sizes the fftshift path: both equal fftc."""
    from medrecon.physics.fft import fftc, ifftc

    maps = _rand((2, 3, *shape), torch.complex128, 7)
    mask = (torch.rand(2, 1, *shape, generator=torch.Generator().manual_seed(8)) > 0.4).double()
    x = _rand((2, *shape), torch.complex128, 9)
    op = SenseOperator(maps, mask)
    assert torch.allclose(op(x), fftc(maps * x[:, None]) * mask, atol=1e-12)
    y = _rand((2, 3, *shape), torch.complex128, 10)
    assert torch.allclose(op.adjoint(y), torch.sum(maps.conj() * ifftc(y * mask), dim=1), atol=1e-12)
    check_operator(op, (2, *shape), torch.complex128)


def test_sense_3d_contract_and_2d_mask():
    maps = _rand((1, 3, 6, 10, 8), torch.complex64, 3)
    mask = (torch.rand(1, 1, 1, 10, 8, generator=torch.Generator().manual_seed(4)) > 0.6).float()
    check_operator(SenseOperator(maps, mask, ndim=3), (2, 6, 10, 8))


def test_sense_matches_sigpy(phantom_mc):
    import sigpy.mri

    maps = phantom_mc["maps"]
    x = phantom_mc["image"]
    mask = np.zeros((128, 128), np.float32)
    mask[:, ::3] = 1
    ref_op = sigpy.mri.linop.Sense(maps.numpy(), weights=mask)
    op = SenseOperator(maps[None], torch.from_numpy(mask)[None, None])
    y_ref = ref_op * x.numpy()
    y = op(x[None])[0].numpy()
    np.testing.assert_allclose(y, y_ref, atol=1e-5 * np.abs(y_ref).max())
    np.testing.assert_allclose(op.adjoint(torch.from_numpy(y_ref)[None])[0].numpy(), ref_op.H * y_ref, atol=1e-4)


def test_sense_validation():
    with pytest.raises(TypeError, match="maps: expected a complex"):
        SenseOperator(torch.ones(1, 2, 4, 4))
    with pytest.raises(ValueError, match="maps: expected 4 dims"):
        SenseOperator(torch.ones(2, 4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match="mask: shape"):
        SenseOperator(torch.ones(1, 2, 4, 4, dtype=torch.complex64), torch.ones(1, 1, 1, 5))


@pytest.mark.gpu
def test_sense_cuda_matches_cpu():
    maps = _rand((1, 4, 32, 32), torch.complex64, 5)
    x = _rand((2, 32, 32), torch.complex64, 6)
    op = SenseOperator(maps)
    ref = op(x)
    got = op.to("cuda")(x.cuda()).cpu()
    assert torch.allclose(got, ref, atol=1e-4)
    check_operator(op, (2, 32, 32), device="cuda")
