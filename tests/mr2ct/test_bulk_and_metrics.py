"""Bulk-density baseline on the generated head; synthetic-CT metrics against hand-computed values; evaluate --metrics hu."""

import json

import numpy as np
import pytest
from conftest import assert_refused
from head_phantom import head, write_nifti

from medrecon.cli.main import main
from medrecon.evaluation.sct_metrics import sct_metrics
from medrecon.evaluation.uncertainty import std_calibration
from medrecon.tasks.mr2ct.bulk import bulk_density_ct
from medrecon.tasks.mr2ct.config import TranslateConfig


def test_bulk_density_finds_the_skull_not_the_ventricle():
    ct, mr = head()
    out = bulk_density_ct(mr / np.percentile(mr[mr > mr.mean()], 99), (2.0, 2.0), TranslateConfig(method="bulk", bone_depth_mm=12))
    skull, ventricle, outside = ct == 1000, ct == 5, ct == -1000
    assert np.mean(out[skull] == 700) > 0.95
    assert np.all(out[ventricle] == 40) and np.all(out[outside] == -1000)


def test_sct_metrics_golden_values():
    t = np.full((2, 8, 8), -1000.0)
    t[:, 2:6, 2:6] = 0.0
    t[:, 3:5, 3:5] = 1000.0  # 4 bone voxels per slice
    r = t.copy()
    r[:, 3:5, 3:5] = 500.0  # bone underestimated by 500 HU
    r[0, 2, 2] = 100.0  # one soft-tissue voxel +100
    mask = t > -500  # 16 voxels per slice
    m = sct_metrics(t, r, mask)
    assert m["MAE_body_HU"] == pytest.approx((8 * 500 + 100) / 32)
    assert m["ME_body_HU"] == pytest.approx((-8 * 500 + 100) / 32)
    assert m["MAE_bone_HU"] == pytest.approx(500.0) and m["Dice_bone"] == pytest.approx(1.0)
    assert m["per_slice"]["MAE_body_HU"] == pytest.approx([2100 / 16, 2000 / 16])
    r[:, 3, 3] = 0.0  # two of eight bone voxels lost
    assert sct_metrics(t, r, mask)["Dice_bone"] == pytest.approx(2 * 6 / (8 + 6))
    with pytest.raises(ValueError, match="mask"):
        sct_metrics(t, r, np.zeros(t.shape, bool))


def test_std_calibration():
    rng = np.random.default_rng(0)
    std = rng.uniform(1, 10, 20000)
    err = np.abs(rng.normal(0, std))  # errors drawn with that std: calibrated
    c = std_calibration(err, std)
    assert c["within_2std"] == pytest.approx(0.954, abs=0.01) and c["std_error_spearman"] > 0.3
    assert std_calibration(err, rng.uniform(1, 10, 20000))["std_error_spearman"] < 0.05  # a std unrelated to the error


def test_evaluate_hu(tmp_path, capsys):
    ct = head()[0]
    write_nifti(ct, tmp_path / "ct.nii.gz")
    write_nifti(np.where(ct > 500, 700.0, ct), tmp_path / "sct.nii.gz")
    write_nifti((ct > -500).astype(np.float32), tmp_path / "body.nii.gz")
    argv = ["evaluate", "--target", tmp_path / "ct.nii.gz", "--recon", tmp_path / "sct.nii.gz", "--metrics", "hu"]
    assert main([str(a) for a in argv + ["--mask", tmp_path / "body.nii.gz", "--json", tmp_path / "m.json"]]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["MAE_bone_HU"] == pytest.approx(300.0) and m["Dice_bone"] == pytest.approx(1.0) and len(m["per_slice"]["MAE_body_HU"]) == 8
    write_nifti(np.zeros_like(ct), tmp_path / "empty.nii.gz")
    assert_refused(argv + ["--mask", tmp_path / "empty.nii.gz"], capsys, "empty mask", tmp_path)
    write_nifti(ct + 1024, tmp_path / "raw.nii.gz")
    assert_refused(
        ["evaluate", "--target", tmp_path / "raw.nii.gz", "--recon", tmp_path / "sct.nii.gz", "--metrics", "hu"],
        capsys,
        "Hounsfield",
        tmp_path,
    )
    write_nifti(ct[:4], tmp_path / "short.nii.gz")
    assert_refused(argv + ["--mask", tmp_path / "short.nii.gz"], capsys, "shape", tmp_path)
