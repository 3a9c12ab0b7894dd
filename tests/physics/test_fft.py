import numpy as np
import pytest
import torch

from medrecon.physics.fft import fftc, ifftc


@pytest.mark.parametrize("ndim,shape", [(2, (3, 16, 12)), (2, (2, 15, 9)), (3, (2, 8, 10, 7))])
def test_centred_unitary_matches_numpy(ndim, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex128)
    axes = tuple(range(-ndim, 0))
    ref = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)
    got = fftc(torch.from_numpy(x), ndim).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-12)
    # unitary: Parseval, and ifftc inverts fftc
    assert np.isclose(np.linalg.norm(got), np.linalg.norm(x))
    np.testing.assert_allclose(ifftc(torch.from_numpy(got), ndim).numpy(), x, atol=1e-12)


def test_centre_convention_dc_at_n_over_2():
    x = torch.ones(1, 6, 7, dtype=torch.complex64)
    k = fftc(x)
    assert torch.argmax(k.abs().flatten()).item() == 3 * 7 + 3


def test_bad_ndim():
    with pytest.raises(ValueError, match="ndim"):
        fftc(torch.zeros(4, dtype=torch.complex64), 4)
