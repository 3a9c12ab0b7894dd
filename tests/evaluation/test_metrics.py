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
