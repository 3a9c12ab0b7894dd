import fastmri.evaluate as fm_eval
import numpy as np
import pytest

from medrecon.evaluation.metrics import center_crop, nmse, psnr, ssim, volume_metrics


def _volumes(seed=0):
    rng = np.random.default_rng(seed)
    gt = np.abs(rng.standard_normal((4, 40, 36))).cumsum(axis=1).astype(np.float32)
    pred = (gt + 0.3 * rng.standard_normal(gt.shape)).astype(np.float32)
    return gt, pred


def test_identical_to_fastmri_evaluate():
    gt, pred = _volumes()
    assert nmse(gt, pred) == pytest.approx(float(fm_eval.nmse(gt, pred)), rel=1e-6)
    assert psnr(gt, pred) == pytest.approx(float(fm_eval.psnr(gt, pred)), rel=1e-6)
    assert ssim(gt, pred) == pytest.approx(float(fm_eval.ssim(gt, pred)[0]), rel=1e-6)


def test_crop_like_fastmri():
    import torch
    from fastmri.data.transforms import center_crop as fm_crop

    x = np.arange(2 * 21 * 19, dtype=np.float32).reshape(2, 21, 19)
    np.testing.assert_array_equal(center_crop(x, (10, 8)), fm_crop(torch.from_numpy(x), (10, 8)).numpy())
    gt, pred = _volumes()
    m = volume_metrics(gt, np.pad(pred, ((0, 0), (2, 3), (2, 3))))
    assert m["NMSE"] == pytest.approx(nmse(gt, pred))


def test_metric_errors():
    gt, pred = _volumes()
    with pytest.raises(ValueError, match="differ"):
        nmse(gt, pred[:, :-1])
    with pytest.raises(TypeError, match="real"):
        psnr(gt.astype(np.complex64), pred)


def test_hu_metrics_over_the_body():
    """A mask restricts MAE/PSNR to the body; SSIM is skimage's SSIM map averaged there (all-true = plain SSIM)."""
    from skimage.metrics import structural_similarity

    from medrecon.evaluation.ct_metrics import body_mask, hu_metrics

    yy, xx = np.mgrid[:64, :64] - 31.5
    target = np.full((2, 64, 64), -1000.0)
    target[:, xx**2 + yy**2 < 20**2] = 40.0
    target[:, (xx - 5) ** 2 + yy**2 < 4**2] = -900.0  # gas inside the body: a hole the mask fills
    target[:, 60:, :] = 100.0  # the table: a separate, smaller region
    rng = np.random.default_rng(0)
    recon = target + rng.normal(0, 20, target.shape)
    recon[:, :4, :4] += 500.0  # an error in the air outside the body
    mask = body_mask(target)
    assert mask[:, 31, 36].all() and not mask[:, 62, 5].any() and not mask[:, 0, 0].any()
    assert int(mask[0].sum()) == int((xx**2 + yy**2 < 20**2).sum())
    whole, body = hu_metrics(target, recon), hu_metrics(target, recon, mask=mask)
    clean_outside = recon.copy()
    clean_outside[:, :4, :4] -= 500.0
    assert body == pytest.approx(hu_metrics(target, clean_outside, mask=mask)) and whole != hu_metrics(
        target, clean_outside
    )  # outside: ignored
    assert body["voxels"] == int(mask.sum())
    inside = np.clip(recon, -1000, 1000)[mask] - np.clip(target, -1000, 1000)[mask]
    assert np.isclose(body["MAE_HU"], np.abs(inside).mean())
    plain = np.mean(
        [structural_similarity(a, b, data_range=2000.0) for a, b in zip(np.clip(target, -1000, 1000), np.clip(recon, -1000, 1000))]
    )
    assert np.isclose(hu_metrics(target, recon, mask=np.ones(target.shape, bool))["SSIM"], plain, atol=1e-6)
    with pytest.raises(ValueError, match="mask"):
        hu_metrics(target, recon, mask=np.zeros(target.shape, bool))
