"""OCT noise estimate and metrics, each pinned to a reference library or a direct computation."""

import numpy as np
import pytest
from oct_synthetic import VITREOUS, clean_retina, speckled
from scipy import ndimage as ndi

from medrecon.evaluation.metrics import psnr, ssim
from medrecon.tasks.oct.metrics import bscan_metrics, cnr_db, enl, epi, msr, oct_metrics, oct_regions
from medrecon.tasks.oct.noise import estimate_noise_sigma, estimate_noise_sigmas


@pytest.mark.parametrize("shape, sigma, seed", [((64, 64), 1.0, 0), ((97, 131), 7.0, 1), ((450, 900), 27.0, 2)])
def test_noise_estimate_is_skimage_estimate_sigma_on_gaussian_noise(shape, sigma, seed):
    from skimage.restoration import estimate_sigma

    rng = np.random.default_rng(seed)
    smooth = 80 + 40 * np.sin(np.linspace(0, 3, shape[1]))[None, :] * np.ones(shape)
    x = smooth + rng.normal(0, sigma, shape)
    assert estimate_noise_sigma(x) == pytest.approx(estimate_sigma(x), rel=1e-12)
    assert estimate_noise_sigma(x) == pytest.approx(sigma, rel=0.1 if min(shape) < 100 else 0.03)
    np.testing.assert_allclose(estimate_noise_sigmas(np.stack([x, 2 * x])), [estimate_sigma(x), estimate_sigma(2 * x)], rtol=1e-12)


def test_enl_of_a_gamma_region_is_its_shape_parameter():
    rng = np.random.default_rng(0)
    for shape in (1.0, 4.0, 10.0):
        img = rng.gamma(shape, 3.0, size=(400, 500))
        region = np.zeros(img.shape, bool)
        region[50:350, 100:450] = True
        assert enl(img, region) == pytest.approx(shape, rel=0.03)


def _regions(shape=(60, 80)):
    bg = np.zeros(shape, bool)
    bg[:10] = True
    rois = []
    for a in (0, 40):
        m = np.zeros(shape, bool)
        m[30:40, a : a + 30] = True
        rois.append(m)
    return bg, rois


def test_cnr_msr_enl_against_direct_numpy():
    rng = np.random.default_rng(1)
    img = rng.normal(50, 5, (60, 80))
    img[30:40, :40] += 100
    img[30:40, 40:] += 60
    bg, rois = _regions()
    mb, sb = img[:10].mean(), img[:10].std()
    r = [img[30:40, 0:30], img[30:40, 40:70]]
    want_cnr = np.mean([10 * np.log10(abs(x.mean() - mb) / np.sqrt(x.std() ** 2 + sb**2)) for x in r])
    assert cnr_db(img, rois, bg) == pytest.approx(want_cnr, rel=1e-12)
    assert msr(img, rois) == pytest.approx(np.mean([x.mean() / x.std() for x in r]), rel=1e-12)
    assert enl(img, bg) == pytest.approx(mb**2 / sb**2, rel=1e-12)
    assert cnr_db(img, [], bg) is None and cnr_db(img, rois, np.zeros_like(bg)) is None
    assert msr(img, []) is None and enl(img, np.zeros_like(bg)) is None


def test_epi_is_the_correlation_of_laplacians():
    rng = np.random.default_rng(2)
    ref = clean_retina()
    img = ref + rng.normal(0, 10, ref.shape)
    region = np.zeros(ref.shape, bool)
    region[15:90] = True
    want = np.corrcoef(ndi.laplace(ref)[region], ndi.laplace(img)[region])[0, 1]
    assert epi(ref, img, region) == pytest.approx(want, rel=1e-10)
    assert epi(ref, ref, region) == pytest.approx(1.0)
    assert epi(ref, 3 * ref + 7, region) == pytest.approx(1.0)  # invariant to gain and offset
    assert epi(ref, ndi.gaussian_filter(ref, 1.0), region) < 1.0


def test_regions_rule_on_a_synthetic_retina():
    clean = clean_retina()
    for image in (clean, speckled(clean).astype(float)):  # from the clean reference and from the noisy B-scan
        reg = oct_regions(image)
        assert reg.background.sum() > 500
        assert np.all(clean[reg.background] == VITREOUS)  # only vitreous, never retina
        assert len(reg.rois) == 6
        for roi in reg.rois:
            assert roi.sum() >= 100 and clean[roi].mean() > 1.8 * VITREOUS  # bright layers
            assert not (roi & reg.background).any()
        assert reg.band[reg.rois[0]].all()  # the ROIs lie in the retina band


def test_oct_metrics_reuse_psnr_ssim_and_rank_denoising():
    clean = np.clip(np.rint(clean_retina()), 0, 255)
    noisy = speckled(clean).astype(float)
    smoothed = ndi.gaussian_filter(noisy, 1.5)
    m_noisy, m_smooth = oct_metrics(clean, noisy), oct_metrics(clean[None], smoothed[None])
    assert m_noisy["PSNR"] == pytest.approx(psnr(clean[None], noisy[None]))
    assert m_noisy["SSIM"] == pytest.approx(ssim(clean[None], noisy[None]))
    for key in ("PSNR", "SSIM", "CNR_dB", "ENL", "MSR", "EPI"):
        assert m_smooth[key] > m_noisy[key], key
    assert bscan_metrics(clean, clean)["EPI"] == pytest.approx(1.0)
    flat = np.tile(np.linspace(0, 255, 80), (60, 1))  # a ramp: no vitreous above tissue, no bright layer
    out = bscan_metrics(flat, flat)
    assert out["CNR_dB"] is None and out["ENL"] is None
