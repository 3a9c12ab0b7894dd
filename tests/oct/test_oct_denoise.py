"""The classical OCT denoisers: the parameter rule, the library calls, and that each one denoises."""

import numpy as np
import pytest
from oct_synthetic import clean_retina, speckled

from medrecon.errors import InputFileError
from medrecon.evaluation.metrics import psnr
from medrecon.tasks.oct.baselines import denoise_bscan, denoise_bscans, method_parameters
from medrecon.tasks.oct.config import OCT_METHODS, OCTDenoiseConfig
from medrecon.tasks.oct.noise import estimate_noise_sigma


def test_parameters_are_proportional_to_sigma():
    cfg = OCTDenoiseConfig(bm3d_factor=1.5, nlm_factor=0.8, tv_factor=3.0)
    assert method_parameters("bm3d", 10.0, cfg) == {"sigma_psd": 15.0}
    nlm = method_parameters("nlm", 10.0, cfg)
    assert nlm["h"] == pytest.approx(8.0) and nlm["sigma"] == 10.0 and nlm["fast_mode"] is True
    tv = method_parameters("tv", 10.0, cfg)
    assert tv["weight"] == pytest.approx(30.0) and tv["eps"] == 0.0 and tv["max_num_iter"] == cfg.tv_iters
    with pytest.raises(ValueError, match="method"):
        method_parameters("median", 1.0, cfg)


@pytest.mark.parametrize("method", OCT_METHODS)
def test_each_method_is_its_library_call_and_denoises(method):
    import bm3d
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

    clean = np.clip(np.rint(clean_retina()), 0, 255)
    noisy = speckled(clean, seed=3).astype(np.float64)
    cfg = OCTDenoiseConfig(method=method)
    sigma = estimate_noise_sigma(noisy)
    out = denoise_bscan(noisy, sigma, cfg)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    reference = {"bm3d": bm3d.bm3d, "nlm": denoise_nl_means, "tv": denoise_tv_chambolle}[method](
        noisy, **method_parameters(method, sigma, cfg)
    )
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-3)
    assert psnr(clean[None], out[None]) > psnr(clean[None], noisy[None]) + 4


@pytest.mark.parametrize("method", ("nlm", "tv"))
def test_denoising_follows_the_scale_of_the_data(method):
    """16-bit data (the 8-bit B-scan × 257) give the 8-bit result × 257: parameters follow the estimated σ."""
    noisy = speckled(clean_retina(64, 96), seed=4).astype(np.float64)
    cfg = OCTDenoiseConfig(method=method)
    small, _ = denoise_bscans(noisy[None], cfg)
    large, sig = denoise_bscans(257 * noisy[None], cfg)
    assert sig[0] == pytest.approx(257 * estimate_noise_sigma(noisy))
    np.testing.assert_allclose(large, 257 * small, rtol=1e-3, atol=0.05 * 257)


def test_stack_uses_given_sigma_and_refuses_noise_free_bscans():
    noisy = speckled(clean_retina(48, 64), seed=5).astype(np.float64)
    out, sig = denoise_bscans(np.stack([noisy, noisy]), OCTDenoiseConfig(method="tv", sigma=12.0))
    assert out.shape == (2, 48, 64) and list(sig) == [12.0, 12.0]
    steps = np.where(np.arange(64) < 32, 10.0, 200.0)[None, :].repeat(48, 0)  # one edge: the HH band's median is 0
    with pytest.raises(InputFileError, match="B-scan 1: expected noise measurable"):
        denoise_bscans(np.stack([noisy, steps]), OCTDenoiseConfig(method="tv"), source="x.tif")
