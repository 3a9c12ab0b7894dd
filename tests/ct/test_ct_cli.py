import json

import h5py
import numpy as np
import pytest
from conftest import assert_refused, shared_file

from medrecon.cli.main import main
from medrecon.datasets.ct_volume import read_ct, write_dicom_series


@pytest.fixture(scope="module")
def ct_series(tmp_path_factory):
    """A small synthetic CT series (water cylinder with bone and air inserts), 4 slices of 64²."""
    d = tmp_path_factory.mktemp("ct")
    yy, xx = np.mgrid[:64, :64] - 31.5
    sl = np.full((64, 64), -1000.0)
    sl[xx**2 + yy**2 < 26**2] = 40.0
    sl[(xx - 8) ** 2 + yy**2 < 6**2] = 700.0
    sl[(xx + 9) ** 2 + (yy - 5) ** 2 < 4**2] = -800.0
    hu = np.stack([sl + 10 * k for k in range(4)])
    aff = np.diag([-1.5, -1.5, 3.0, 1.0])
    aff[:3, 3] = [47.0, 47.0, -10.0]
    return write_dicom_series(hu, aff, d / "series")


def test_simulate_reconstruct_evaluate_ct(tmp_path, ct_series, capsys):
    sino = tmp_path / "sino.h5"
    assert (
        main(
            [
                "simulate",
                "ct",
                "--input",
                str(ct_series),
                "--geometry",
                "parallel",
                "--arc",
                "120",
                "--views",
                "60",
                "--dose",
                "1e5",
                "--quiet",
                "--out",
                str(sino),
            ]
        )
        == 0
    )
    with h5py.File(sino) as f:
        g = json.loads(f.attrs["geometry"])
        assert f["sinogram"].shape == (4, 60, g["n_det"]) and g["beam"] == "parallel"
        assert abs(np.rad2deg(g["angles_rad"][-1] - g["angles_rad"][0]) - 118.0) < 1e-6
    metrics = {}
    for method, extra in (("fbp", ["--filter", "hann"]), ("sirt", ["--iters", "50"]), ("tv", ["--iters", "100"])):
        out = tmp_path / f"{method}.nii.gz"
        assert main(["reconstruct", "ct", str(sino), "--method", method, *extra, "--quiet", "--out", str(out)]) == 0
        js = tmp_path / f"{method}.json"
        assert main(["evaluate", "--target", str(ct_series), "--recon", str(out), "--json", str(js)]) == 0
        metrics[method] = json.loads(js.read_text())
    assert metrics["tv"]["MAE_HU"] < metrics["sirt"]["MAE_HU"] < metrics["fbp"]["MAE_HU"]
    assert metrics["tv"]["window_lo_HU"] == -1000.0
    # a DICOM series output keeps the source geometry and references
    out_dir = tmp_path / "dcm"
    assert main(["reconstruct", "ct", str(sino), "--method", "fbp", "--quiet", "--out", str(out_dir) + "/"]) == 0
    src, rec = read_ct(ct_series), read_ct(out_dir)
    np.testing.assert_allclose(rec.affine, src.affine, atol=1e-5)
    assert rec.headers[0].StudyInstanceUID == src.headers[0].StudyInstanceUID
    assert rec.headers[0].SeriesInstanceUID != src.headers[0].SeriesInstanceUID
    assert "MAE_HU" in capsys.readouterr().out


def test_fan_beam_iterative(tmp_path, ct_series):
    sino = tmp_path / "fan.h5"
    assert (
        main(
            [
                "simulate",
                "ct",
                "--input",
                str(ct_series),
                "--geometry",
                "fan",
                "--views",
                "90",
                "--dose",
                "0",
                "--slices",
                "1-2",
                "--quiet",
                "--out",
                str(sino),
            ]
        )
        == 0
    )
    out = tmp_path / "fan.nii.gz"
    assert main(["reconstruct", "ct", str(sino), "--method", "cgls", "--iters", "20", "--quiet", "--out", str(out)]) == 0
    js = tmp_path / "m.json"
    assert main(["evaluate", "--target", str(ct_series), "--recon", str(out), "--slices", "1-2", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["MAE_HU"] < 60
    assert main(["reconstruct", "ct", str(sino), "--method", "fbp", "--quiet", "--out", str(tmp_path / "x.nii")]) == 0
    assert main(["evaluate", "--target", str(ct_series), "--recon", str(tmp_path / "x.nii"), "--slices", "1-2", "--json", str(js)]) == 0
    assert json.loads(js.read_text())["MAE_HU"] < 80
    body = tmp_path / "body.json"
    assert (
        main(["evaluate", "--target", str(ct_series), "--recon", str(tmp_path / "x.nii"), "--slices", "1-2", "--body", "--json", str(body)])
        == 0
    )
    assert json.loads(body.read_text())["voxels"] < 2 * 64 * 64  # the water cylinder, not the air around it


def test_ct_bad_inputs(tmp_path, ct_series, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "s.h5")
    assert_refused(["simulate", "ct", "--input", str(empty), "--out", out], capsys, "expected at least one DICOM image", tmp_path)
    nogeo = tmp_path / "nogeo.h5"
    with h5py.File(nogeo, "w") as f:
        f.create_dataset("sinogram", data=np.zeros((1, 10, 20), np.float32))
    assert_refused(
        ["reconstruct", "ct", str(nogeo), "--out", str(tmp_path / "r.nii.gz")],
        capsys,
        "geometry: expected a 'geometry' attribute",
        tmp_path,
    )
    sino = tmp_path / "ok.h5"
    assert main(["simulate", "ct", "--input", str(ct_series), "--views", "30", "--quiet", "--out", str(sino)]) == 0
    with h5py.File(sino) as f:
        data, attrs = f["sinogram"][()], dict(f.attrs)
    bad = tmp_path / "angles.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("sinogram", data=data[:, :25])
        f.attrs.update(attrs)
    assert_refused(["reconstruct", "ct", str(bad), "--out", str(tmp_path / "r.nii.gz")], capsys, "25 projections for 30 angles", tmp_path)
    nanf = tmp_path / "nan.h5"
    data[0, 3, 3] = np.nan
    with h5py.File(nanf, "w") as f:
        f.create_dataset("sinogram", data=data)
        f.attrs.update(attrs)
    assert_refused(
        ["reconstruct", "ct", str(nanf), "--out", str(tmp_path / "r.nii.gz")], capsys, "sinogram: expected finite projections", tmp_path
    )
    import torch

    if not torch.cuda.is_available():
        assert_refused(
            ["reconstruct", "ct", str(sino), "--device", "cuda", "--out", str(tmp_path / "r.nii.gz")], capsys, "no CUDA GPU", tmp_path
        )
    assert_refused(["reconstruct", "ct", str(sino), "--out", str(tmp_path / "r.png")], capsys, "output: expected a .nii", tmp_path)


@pytest.mark.data
@pytest.mark.slow
def test_real_dicom_series_cli(tmp_path):
    src = shared_file("ct/totalseg_abdomen_ct_dicom")
    sino = tmp_path / "s.h5"
    assert (
        main(["simulate", "ct", "--input", str(src), "--arc", "90", "--views", "180", "--slices", "9-10", "--quiet", "--out", str(sino)])
        == 0
    )
    assert main(["reconstruct", "ct", str(sino), "--method", "fbp", "--quiet", "--out", str(tmp_path / "r") + "/"]) == 0
    assert main(["evaluate", "--target", str(src), "--recon", str(tmp_path / "r"), "--slices", "9-10"]) == 0


@pytest.mark.gpu
def test_cuda_reconstructions_match_cpu(tmp_path, ct_series):
    """FBP / SIRT / TV through the CLI on CUDA (ASTRA GPU projectors) agree with the CPU run."""

    import astra

    if not astra.use_cuda():
        pytest.skip("ASTRA built without CUDA")
    import nibabel as nib

    sino = tmp_path / "sino.h5"
    assert (
        main(
            [
                "simulate",
                "ct",
                "--input",
                str(ct_series),
                "--arc",
                "120",
                "--views",
                "60",
                "--dose",
                "1e5",
                "--device",
                "cuda",
                "--quiet",
                "--out",
                str(sino),
            ]
        )
        == 0
    )
    for method, extra in (("fbp", []), ("sirt", ["--iters", "50"]), ("tv", ["--iters", "100"])):
        vols = {}
        for dev in ("cpu", "cuda"):
            out = tmp_path / f"{method}_{dev}.nii.gz"
            assert main(["reconstruct", "ct", str(sino), "--method", method, *extra, "--device", dev, "--quiet", "--out", str(out)]) == 0
            vols[dev] = nib.load(str(out)).get_fdata()
        diff = np.abs(vols["cuda"] - vols["cpu"])
        print(method, "CUDA vs CPU: mean |diff| HU", float(diff.mean()), "max", float(diff.max()))
        assert float(diff.mean()) < 10.0, method


def test_ct_outputs_are_never_inputs(tmp_path, ct_series, capsys):
    """simulate / reconstruct / evaluate refuse an output that is an input or lies inside an input series folder."""
    import shutil

    from medrecon.datasets.ct_volume import write_ct_nifti

    series_files = sorted(p.name for p in ct_series.iterdir())
    vol = write_ct_nifti(read_ct(ct_series), tmp_path / "vol.nii.gz")
    vol_bytes = vol.read_bytes()
    assert_refused(
        ["simulate", "ct", "--input", str(vol), "--out", str(vol)], capsys, "--out: expected a path that is not one of the inputs", tmp_path
    )
    assert_refused(
        ["simulate", "ct", "--input", str(ct_series), "--out", str(ct_series / "s.h5")],
        capsys,
        "--out: expected a path outside the input folders",
        tmp_path,
    )
    sino = tmp_path / "s.h5"
    assert main(["simulate", "ct", "--input", str(ct_series), "--views", "20", "--quiet", "--out", str(sino)]) == 0
    bare = shutil.copy(sino, tmp_path / "sino")  # no suffix: would be taken for a DICOM output folder
    for src, out, match in (
        (sino, sino, "the same file as the sinogram"),
        (bare, bare, "the same file as the sinogram"),
        (sino, ct_series / "sub", "inside the folder of the sinogram's source"),  # a DICOM series inside the source series
    ):
        assert_refused(["reconstruct", "ct", str(src), "--quiet", "--out", str(out)], capsys, match, tmp_path)
    vsino = tmp_path / "v.h5"
    assert main(["simulate", "ct", "--input", str(vol), "--views", "20", "--quiet", "--out", str(vsino)]) == 0
    assert_refused(
        ["reconstruct", "ct", str(vsino), "--quiet", "--out", str(vol)], capsys, "the same file as the sinogram's source", tmp_path
    )
    rec = tmp_path / "r.nii.gz"
    assert main(["reconstruct", "ct", str(sino), "--quiet", "--out", str(rec)]) == 0
    for js in (vol, rec, ct_series / "m.json"):
        target = ct_series if js.parent == ct_series else vol
        assert_refused(
            ["evaluate", "--target", str(target), "--recon", str(rec), "--json", str(js)], capsys, "--json: expected a path", tmp_path
        )
    assert vol.read_bytes() == vol_bytes and sorted(p.name for p in ct_series.iterdir()) == series_files


def test_ct_numeric_options(tmp_path, ct_series, capsys):
    """A negative dose is an error (only 0 means noiseless); range errors name the option as typed; NaN / Inf never pass."""
    out = str(tmp_path / "s.h5")
    sim = ["simulate", "ct", "--input", str(ct_series), "--views", "10", "--quiet"]
    for extra, match in (
        (["--dose", "-5"], "--dose: expected photons per detector bin > 0, or 0 for a noiseless sinogram, got -5"),
        (["--arc", "400"], "--arc: expected <= 360"),
        (["--electronic-noise", "-1"], "--electronic-noise: expected >= 0"),
        (["--set", "dose=.inf"], "--set dose: expected a finite number"),
        (["--slices", "3-1"], "--slices: expected non-negative indices and ascending ranges"),
        (["--device", "tpu"], "--device: expected 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    ):
        assert_refused([*sim, *extra, "--out", out], capsys, match, tmp_path)
    for extra in (["--dose", "nan"], ["--arc", "inf"], ["--dose=-inf"], ["--electronic-noise", "1e999"]):
        assert_refused([*sim, *extra, "--out", out], capsys, f"{extra[0].split('=')[0]}: expected a finite number", tmp_path)
    assert main([*sim, "--dose", "0", "--out", out]) == 0  # noiseless
    with h5py.File(out) as f:
        assert f.attrs["dose"] == -1.0
    assert_refused(
        ["reconstruct", "ct", out, "--method", "fbp", "--start", "nan", "--out", str(tmp_path / "r.nii")],
        capsys,
        "--start: expected a finite",
        tmp_path,
    )
    assert_refused(
        ["reconstruct", "ct", out, "--lam", "inf", "--out", str(tmp_path / "r.nii")], capsys, "--lam: expected a finite number", tmp_path
    )


def test_special_file_input_is_refused_not_waited_on(tmp_path):
    """A named pipe as the CT input is refused at once (one line, exit 2) instead of blocking the reader."""
    import os
    import subprocess
    import sys

    for name in ("pipe.nii.gz", "pipe.dcm", "pipe"):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        cmd = [sys.executable, "-m", "medrecon", "simulate", "ct", "--input", str(fifo), "--quiet", "--out", str(tmp_path / "s.h5")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        err = r.stderr.strip()
        assert r.returncode == 2 and "\n" not in err and f"{name}: file:" in err and "got a named pipe (FIFO)" in err, err
    assert not (tmp_path / "s.h5").exists()
