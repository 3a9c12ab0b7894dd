"""``medrecon denoise oct`` and ``medrecon evaluate --metrics oct`` end to end, and bad input."""

import json
import os

import nibabel as nib
import numpy as np
import pytest
import tifffile
from conftest import assert_refused, shared_file
from oct_synthetic import write_pair
from PIL import Image

from medrecon.cli.main import main
from medrecon.tasks.oct.config import OCTDenoiseConfig


@pytest.fixture
def pair(tmp_path):
    return write_pair(tmp_path, "case01")


def _evaluate(target, recon, out_json):
    assert main(["evaluate", "--target", str(target), "--recon", str(recon), "--metrics", "oct", "--json", str(out_json)]) == 0
    return json.loads(out_json.read_text())


@pytest.mark.parametrize("method", ["bm3d", "nlm", "tv"])
def test_denoise_then_evaluate(tmp_path, pair, method, capsys):
    test, avg = pair
    out = tmp_path / f"case01_{method}.tif"
    assert main(["denoise", "oct", str(test), "--method", method, "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    res = tifffile.imread(out)
    assert res.dtype == np.uint8 and res.shape == tifffile.imread(test).shape
    noisy_m = _evaluate(avg, test, tmp_path / "noisy.json")
    m = _evaluate(avg, out, tmp_path / "m.json")
    assert set(m) == {"target", "recon", "PSNR", "SSIM", "CNR_dB", "ENL", "MSR", "EPI"}
    assert m["PSNR"] > noisy_m["PSNR"] + 4 and m["EPI"] > noisy_m["EPI"] and m["ENL"] > noisy_m["ENL"]
    # TIFF / PNG imply the OCT metrics; the table goes to stdout
    assert main(["evaluate", "--target", str(avg), "--recon", str(out)]) == 0
    assert "CNR_dB" in capsys.readouterr().out


def test_default_method_and_settings(tmp_path, pair, capsys):
    test, _ = pair
    assert main(["denoise", "oct", str(test), "--out", str(tmp_path / "d.tif")]) == 0
    assert f"(1 B-scan, {OCTDenoiseConfig().method}, noise σ estimated" in capsys.readouterr().out
    cfg = tmp_path / "c.yaml"
    cfg.write_text("denoise:\n  method: tv\n  tv_factor: 1.0\n")
    assert (
        main(["denoise", "oct", str(test), "--config", str(cfg), "--set", "tv_iters=50", "--sigma", "20", "--out", str(tmp_path / "t.tif")])
        == 0
    )
    assert "(1 B-scan, tv, noise σ given 20)" in capsys.readouterr().out


def test_folder_and_nifti_inputs(tmp_path, pair):
    test, avg = pair
    src = tmp_path / "scans"
    src.mkdir()
    img = tifffile.imread(test)
    Image.fromarray(img).save(src / "a.png")
    tifffile.imwrite(src / "b.tif", img[::-1], photometric="minisblack")
    assert main(["denoise", "oct", str(src), "--method", "tv", "--quiet", "--out", str(tmp_path / "den")]) == 0
    assert sorted(p.name for p in (tmp_path / "den").iterdir()) == ["a.png", "b.tif"]
    assert np.asarray(Image.open(tmp_path / "den" / "a.png")).dtype == np.uint8
    vol = nib.Nifti1Image(np.stack([img.T, img.T[:, ::-1]], -1), np.diag([0.01, 0.004, 0.1, 1.0]))  # (W, H, N)
    vol.header.set_zooms((0.01, 0.004, 0.1))
    nib.save(vol, str(tmp_path / "v.nii.gz"))
    assert main(["denoise", "oct", str(tmp_path / "v.nii.gz"), "--method", "nlm", "--out", str(tmp_path / "o.nii.gz")]) == 0
    back = nib.load(tmp_path / "o.nii.gz")
    assert back.shape == (img.shape[1], img.shape[0], 2) and back.get_data_dtype() == np.uint8
    assert _evaluate(tmp_path / "v.nii.gz", tmp_path / "o.nii.gz", tmp_path / "n.json")["PSNR"] > 0


def test_bad_inputs(tmp_path, pair, capsys):
    test, avg = pair
    assert_refused(["denoise", "oct", str(test), "--out", str(test)], capsys, "the same file as the input", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--out", str(tmp_path / "o.png")], capsys, "expected the input's format", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--out", str(tmp_path)], capsys, "the input", tmp_path)
    img = tifffile.imread(test)
    colour = tmp_path / "c.png"
    Image.fromarray(np.stack([img, img[::-1], img], -1)).save(colour)
    assert_refused(["denoise", "oct", str(colour), "--out", str(tmp_path / "o.png")], capsys, "colour: expected grey", tmp_path)
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.zeros_like(img))
    assert_refused(["denoise", "oct", str(flat), "--out", str(tmp_path / "o.tif")], capsys, "every pixel 0", tmp_path)
    os.mkfifo(tmp_path / "fifo.tif")
    assert_refused(["denoise", "oct", str(tmp_path / "fifo.tif"), "--out", str(tmp_path / "o.tif")], capsys, "named pipe", tmp_path)
    sub = tmp_path / "dir.tif"  # a folder named like a file: read as a folder, so the output must be a folder
    sub.mkdir()
    tifffile.imwrite(sub / "a.tif", img)
    assert_refused(["denoise", "oct", str(sub), "--out", str(tmp_path / "o.tif")], capsys, "a new or empty folder", tmp_path)
    iso = nib.Nifti1Image(np.stack([img.T] * 3, -1), np.eye(4))
    nib.save(iso, str(tmp_path / "iso.nii"))
    assert_refused(["denoise", "oct", str(tmp_path / "iso.nii"), "--out", str(tmp_path / "o.nii")], capsys, "--bscan-axis 0|1|2", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--set", "tv_factor=-1", "--out", str(tmp_path / "o.tif")], capsys, "tv_factor", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--sigma", "nan", "--out", str(tmp_path / "o.tif")], capsys, "finite", tmp_path)
    assert_refused(
        ["denoise", "oct", str(test), "--bscan-axis", "1", "--out", str(tmp_path / "o.tif")], capsys, "only with a NIfTI", tmp_path
    )
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, img[:50])
    assert_refused(
        ["evaluate", "--target", str(avg), "--recon", str(small), "--json", str(tmp_path / "m.json")], capsys, "like the target", tmp_path
    )
    assert_refused(["evaluate", "--target", str(avg), "--recon", str(test), "--window", "0", "1"], capsys, "CT options", tmp_path)
    assert_refused(["evaluate", "--target", str(avg), "--recon", str(test), "--json", str(test)], capsys, "--json", tmp_path)


@pytest.mark.data
def test_shared_duke_case(tmp_path):
    """A real B-scan (Fang et al. 2013): TV through the CLI gains > 6 dB PSNR against the registered average."""
    test, avg = shared_file("oct/case05_test.tif"), shared_file("oct/case05_average.tif")
    out = tmp_path / "case05_tv.tif"
    assert main(["denoise", "oct", str(test), "--method", "tv", "--out", str(out)]) == 0
    noisy, m = _evaluate(avg, test, tmp_path / "n.json"), _evaluate(avg, out, tmp_path / "m.json")
    assert 16 < noisy["PSNR"] < 20 and m["PSNR"] > noisy["PSNR"] + 6
    assert all(m[k] is not None for k in ("CNR_dB", "ENL", "MSR", "EPI")) and m["EPI"] > noisy["EPI"]


def test_a_folder_of_volumes_is_a_folder_run(tmp_path, pair):
    """Sub-folders of B-scans and NIfTI volumes: one output each, named like the input; a rerun skips them."""
    test, _ = pair
    img = tifffile.imread(test)
    root = tmp_path / "eyes"
    (root / "left").mkdir(parents=True)
    tifffile.imwrite(root / "left" / "b0.tif", img, photometric="minisblack")
    tifffile.imwrite(root / "left" / "b1.tif", img[:, ::-1], photometric="minisblack")
    vol = nib.Nifti1Image(np.stack([img.T, img.T[:, ::-1]], -1), np.diag([0.01, 0.004, 0.1, 1.0]))
    nib.save(vol, str(root / "right.nii.gz"))
    out = tmp_path / "den"
    assert main(["denoise", "oct", str(root), "--method", "tv", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["left", "right.nii.gz"]
    assert sorted(p.name for p in (out / "left").iterdir()) == ["b0.tif", "b1.tif"]
    assert nib.load(out / "right.nii.gz").shape == vol.shape
    assert main(["denoise", "oct", str(root), "--method", "tv", "--quiet", "--out", str(out)]) == 0
