"""Folder evaluation agrees with the fastmri package's evaluate.py on the same folders."""

import argparse
import csv
import json

import h5py
import numpy as np
import pytest
from conftest import assert_refused

from medrecon.cli.main import main
from medrecon.evaluation.folders import evaluate_folders

SHAPES = {"a.h5": (3, 40, 32), "b.h5": (2, 32, 32), "c.h5": (4, 48, 40), "d.h5": (2, 36, 36)}  # taller than wide: fastMRI crops


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    target, recon = root / "target", root / "recon"
    target.mkdir()
    recon.mkdir()
    rng = np.random.default_rng(3)
    for i, (name, shape) in enumerate(SHAPES.items()):
        gt = np.abs(rng.standard_normal(shape)).astype(np.float32) + 0.5
        with h5py.File(target / name, "w") as f:
            f.create_dataset("reconstruction_rss", data=gt)
            f.attrs["acceleration"] = 4 if i % 2 else 8
            f.attrs["acquisition"] = "AXT1"
        s, h, w = shape
        pred = np.pad(gt, ((0, 0), (2, 2), (4, 4)), mode="edge") + 0.1 * (i + 1) * rng.standard_normal((s, h + 4, w + 8))
        with h5py.File(recon / name, "w") as f:  # a larger reconstruction, centre-cropped as fastMRI does
            f.create_dataset("reconstruction", data=pred.astype(np.float32))
    return target, recon


def test_folder_metrics_match_the_fastmri_package(folders):
    fm_eval = pytest.importorskip("fastmri.evaluate")
    target, recon = folders
    ref = fm_eval.evaluate(
        argparse.Namespace(target_path=target, predictions_path=recon, acquisition=None, acceleration=None), "reconstruction_rss"
    )
    ours = evaluate_folders(target, recon)
    assert ours["volumes"] == 4
    worst = 0.0
    for name in ("MSE", "NMSE", "PSNR", "SSIM"):
        mean, std = ref.means()[name], ref.stddevs()[name]
        worst = max(worst, abs(ours["metrics"][name]["mean"] - mean) / abs(mean), abs(ours["metrics"][name]["std"] - std) / abs(std))
    assert worst < 1e-6, worst  # fastMRI sums float32 files in float32, medrecon in float64: measured 1.2e-7
    ref4 = fm_eval.evaluate(
        argparse.Namespace(target_path=target, predictions_path=recon, acquisition=None, acceleration=4), "reconstruction_rss"
    )
    assert ours["by_acceleration"]["4"]["volumes"] == 2
    assert ours["by_acceleration"]["4"]["metrics"]["PSNR"]["mean"] == pytest.approx(ref4.means()["PSNR"], rel=1e-8)


def test_evaluate_command_on_folders_writes_json_and_csv(tmp_path, folders, capsys):
    target, recon = folders
    js, table = tmp_path / "m.json", tmp_path / "v.csv"
    assert main(["evaluate", "--target", str(target), "--recon", str(recon), "--json", str(js), "--csv", str(table), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 volumes" in out and "fastMRI: MSE =" in out and "8x (2 volumes)" in out
    doc = json.loads(js.read_text())
    assert doc["volumes"] == 4 and set(doc["metrics"]) == {"MSE", "NMSE", "PSNR", "SSIM"}
    rows = list(csv.DictReader(table.open()))
    assert [r["file"] for r in rows] == sorted(SHAPES) and rows[0]["crop"] == "32x32"


def test_missing_reconstructions_are_refused_or_skipped(tmp_path, folders, capsys):
    target, recon = folders
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "a.h5").write_bytes((recon / "a.h5").read_bytes())
    assert_refused(["evaluate", "--target", target, "--recon", partial], capsys, "3 missing", tmp_path)
    assert main(["evaluate", "--target", str(target), "--recon", str(partial), "--skip-missing", "--quiet"]) == 0
    assert "skipped 3 targets" in capsys.readouterr().err
    assert_refused(["evaluate", "--target", target, "--recon", partial, "--slices", "0"], capsys, "single-volume options", tmp_path)
