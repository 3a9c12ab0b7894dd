import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from mri_files import multicoil_volume, write_fastmri, write_skmtea

from medrecon.cli.main import main
from medrecon.runtime import parse_slices


@pytest.fixture(scope="module")
def fully(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    return write_fastmri(d / "fully.h5", multicoil_volume(slices=2, coils=4, h=64, w=64), recon_size=(48, 48))


def test_simulate_reconstruct_evaluate(tmp_path, fully, capsys):
    under = tmp_path / "under.h5"
    assert (
        main(
            [
                "simulate",
                "mri",
                "--input",
                str(fully),
                "--mask",
                "equispaced_fraction",
                "--accel",
                "4",
                "--center-fraction",
                "0.15",
                "--seed",
                "0",
                "--out",
                str(under),
            ]
        )
        == 0
    )
    with h5py.File(under) as f:
        assert f["kspace"].shape == (2, 4, 64, 64) and f["mask"].shape == (64,)
        assert f["reconstruction_rss"].shape == (2, 48, 48)
        assert f.attrs["acceleration"] == 4 and f.attrs["num_low_frequency"] == 10
        m = f["mask"][()]
        assert np.all(f["kspace"][0][:, :, m == 0] == 0)
        assert b"ISMRMRD" in f["ismrmrd_header"][()]
    results = {}
    for method, out in (("zf", "zf.nii.gz"), ("sense", "sense.h5"), ("cs", "cs.nii.gz")):
        assert main(["reconstruct", "mri", str(under), "--method", method, "--quiet", "--out", str(tmp_path / out)]) == 0
        js = tmp_path / f"{method}.json"
        assert main(["evaluate", "--target", str(fully), "--recon", str(tmp_path / out), "--json", str(js)]) == 0
        results[method] = json.loads(js.read_text())
    assert "PSNR" in capsys.readouterr().out
    assert results["sense"]["PSNR"] > results["zf"]["PSNR"] + 3
    assert results["cs"]["PSNR"] > results["zf"]["PSNR"] + 3
    # a slice subset, evaluated against the matching target slices
    assert main(["reconstruct", "mri", str(under), "--method", "zf", "--slices", "1", "--quiet", "--out", str(tmp_path / "s1.h5")]) == 0
    assert main(["evaluate", "--target", str(fully), "--recon", str(tmp_path / "s1.h5"), "--slices", "1"]) == 0


def test_skmtea_2d_mask_roundtrip(tmp_path):
    sk = write_skmtea(tmp_path / "MTR_001.h5", multicoil_volume(slices=2, coils=4, h=48, w=40))
    under = tmp_path / "u.h5"
    assert main(["simulate", "mri", "--input", str(sk), "--mask", "poisson", "--accel", "3", "--calib", "12", "--out", str(under)]) == 0
    with h5py.File(under) as f:
        assert f["mask"].shape == (48, 40)
    assert main(["reconstruct", "mri", str(under), "--method", "sense", "--quiet", "--out", str(tmp_path / "r.nii")]) == 0
    assert main(["reconstruct", "mri", str(sk), "--method", "zf", "--quiet", "--out", str(tmp_path / "z.nii")]) == 0


def _fails(argv, capsys, match, tmp_path, out_name=None):
    before = set(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and match in err, err
    assert set(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_bad_input_errors(tmp_path, fully, capsys):
    out = str(tmp_path / "r.nii.gz")
    (tmp_path / "junk.h5").write_text("junk")
    _fails(
        ["reconstruct", "mri", str(tmp_path / "junk.h5"), "--out", out], capsys, "junk.h5: file: expected a readable HDF5 file", tmp_path
    )
    _fails(["reconstruct", "mri", str(fully), "--out", str(tmp_path / "missing" / "r.nii.gz")], capsys, "missing folder", tmp_path)
    _fails(["reconstruct", "mri", str(fully), "--device", "cuda:7", "--out", out], capsys, "--device", tmp_path) if not __import__(
        "torch"
    ).cuda.is_available() else None
    _fails(["reconstruct", "mri", str(fully), "--out", str(tmp_path / "r.png")], capsys, "output file type", tmp_path)
    _fails(["reconstruct", "mri", str(fully), "--slices", "9", "--quiet", "--out", out], capsys, "out of range", tmp_path)
    bad = multicoil_volume(slices=2, coils=4, h=64, w=64)
    bad[0, 1, 0, 0] = np.inf
    nanf = write_fastmri(tmp_path / "inf.h5", bad, recon_size=(48, 48))
    _fails(
        ["reconstruct", "mri", str(nanf), "--quiet", "--method", "zf", "--out", out],
        capsys,
        "kspace slice 0: expected finite values",
        tmp_path,
    )
    _fails(
        ["simulate", "mri", "--input", str(fully), "--accel", "4", "--center-fraction", "0.5", "--out", str(tmp_path / "u.h5")],
        capsys,
        "exceeds",
        tmp_path,
    )
    _fails(["evaluate", "--target", str(fully), "--recon", str(tmp_path / "none.nii.gz")], capsys, "no such file", tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["reconstruct", "mri", str(fully), "--method", "magic", "--out", out])
    assert e.value.code == 2 and "invalid choice: 'magic'" in capsys.readouterr().err


def test_parse_slices():
    assert parse_slices("0-2,5") == [0, 1, 2, 5]
    assert parse_slices(None) is None
    with pytest.raises(ValueError, match="--slices"):
        parse_slices("a-b")


def test_console_entry_point_runs():
    r = subprocess.run([sys.executable, "-m", "medrecon", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "reconstruct" in r.stdout


def test_config_file(tmp_path, fully):
    from pathlib import Path

    from medrecon.config import load_config
    from medrecon.errors import InputFileError
    from medrecon.tasks.mri.config import ClassicalConfig

    repo_cfg = Path(__file__).resolve().parents[2] / "configs" / "mri_sense.yaml"
    assert load_config(repo_cfg, ClassicalConfig, "recon").method == "sense"
    assert main(["reconstruct", "mri", str(fully), "--config", str(repo_cfg), "--quiet", "--out", str(tmp_path / "r.h5")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("recon:\n  method: cs\n  lamda: 0.1\n")
    with pytest.raises(
        InputFileError, match=r"recon.lamda: expected a key among \['crop_to_recon_size', 'iters', 'lam', 'method'\], got an unknown key"
    ):
        load_config(bad, ClassicalConfig, "recon")
    bad.write_text("recon:\n  method: tv\n")
    with pytest.raises(ValueError, match="method"):
        load_config(bad, ClassicalConfig, "recon")
    bad.write_text("other: {}\n")
    with pytest.raises(InputFileError, match="'recon' mapping"):
        load_config(bad, ClassicalConfig, "recon")


def test_no_command_writes_to_its_inputs(tmp_path, fully, capsys):
    """An output that is an input (same path, another spelling, a symbolic or hard link) is refused; the input is untouched."""
    import os
    import shutil

    src = shutil.copy(fully, tmp_path / "x.h5")
    original = src.read_bytes()
    os.link(src, tmp_path / "hard.h5")
    os.symlink(src, tmp_path / "soft.h5")
    expected = "expected a path that is not one of the inputs"
    for out in (src, tmp_path / "." / "x.h5", tmp_path / "hard.h5", tmp_path / "soft.h5"):
        _fails(["reconstruct", "mri", str(src), "--method", "zf", "--quiet", "--out", str(out)], capsys, f"--out: {expected}", tmp_path)
        _fails(["simulate", "mri", "--input", str(src), "--out", str(out)], capsys, f"--out: {expected}", tmp_path)
    recon = tmp_path / "r.h5"
    assert main(["reconstruct", "mri", str(src), "--method", "zf", "--quiet", "--out", str(recon)]) == 0
    for js in (src, recon):
        _fails(["evaluate", "--target", str(src), "--recon", str(recon), "--json", str(js)], capsys, f"--json: {expected}", tmp_path)
    assert src.read_bytes() == original and main(["evaluate", "--target", str(src), "--recon", str(recon)]) == 0


def test_every_float_option_refuses_nan_and_inf(tmp_path, fully, capsys):
    """NaN / Inf are refused for every float option (even one the chosen method ignores), in one line naming the option."""
    from medrecon.cli.main import build_parser
    from medrecon.tasks.options import FiniteFloat

    def actions(parser):
        for a in parser._actions:
            yield a
            if isinstance(a.choices, dict):  # subcommands
                for sub in a.choices.values():
                    yield from actions(sub)

    floats = [a for a in actions(build_parser()) if a.type is float]
    assert len(floats) >= 12 and all(isinstance(a, FiniteFloat) for a in floats), [a.option_strings for a in floats]
    out = str(tmp_path / "r.h5")
    for argv, option, value in (
        (["reconstruct", "mri", str(fully), "--method", "zf", "--start", "nan", "--out", out], "--start", "nan"),
        (["reconstruct", "mri", str(fully), "--lam", "inf", "--out", out], "--lam", "inf"),
        (["reconstruct", "mri", str(fully), "--dc-lam", "1e999", "--out", out], "--dc-lam", "inf"),
        (["simulate", "mri", "--input", str(fully), "--accel", "inf", "--out", out], "--accel", "inf"),
        (["simulate", "mri", "--input", str(fully), "--center-fraction=-inf", "--out", out], "--center-fraction", "-inf"),
        (["evaluate", "--target", str(fully), "--recon", str(fully), "--window", "0", "nan"], "--window", "nan"),
        (["train", "--config", "x.yaml", "--max-minutes", "inf"], "--max-minutes", "inf"),
    ):
        _fails(argv, capsys, f"medrecon: error: {option}: expected a finite number, got {value}", tmp_path)
    # values from --set (YAML .nan / .inf) are checked by the settings; other checks name the option as typed
    _fails(["reconstruct", "mri", str(fully), "--set", "lam=.nan", "--out", out], capsys, "--set lam: expected a finite number", tmp_path)
    _fails(["simulate", "mri", "--input", str(fully), "--accel", "1", "--out", out], capsys, "--accel: expected > 1", tmp_path)
    _fails(["reconstruct", "mri", str(fully), "--slices", "1-0", "--out", out], capsys, "--slices: expected", tmp_path)
    _fails(
        ["reconstruct", "mri", str(fully), "--device", "tpu", "--out", out],
        capsys,
        "--device: expected 'cpu', 'cuda' or 'cuda:N'",
        tmp_path,
    )


def test_all_zero_or_nan_results_are_refused_not_written(tmp_path, fully, capsys):
    """A zero mask gives an all-zero SENSE volume and a NaN mask a NaN one: exit 2, nothing written."""
    import shutil

    for name, fill in (("zero", 0.0), ("nan", np.nan)):
        bad = tmp_path / f"{name}.h5"
        shutil.copy(fully, bad)
        with h5py.File(bad, "r+") as f:
            f["kspace"][...] = f["kspace"][()] * (0.0 if fill == 0.0 else 1.0)
            f.create_dataset("mask", data=np.full(64, fill, dtype=np.float32))
        out = tmp_path / f"{name}.nii.gz"
        code = main(["reconstruct", "mri", str(bad), "--method", "sense", "--quiet", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and not out.exists(), err
        assert len(err.strip().splitlines()) == 1 and ("all zero" in err or "NaN" in err or "mask" in err), err


def test_check_result_refuses_non_finite_and_all_zero():
    from medrecon.errors import InputFileError
    from medrecon.tasks.outputs import check_result

    check_result(np.ones((2, 3, 3)), "in.h5")
    for bad, words in ((np.zeros((2, 3, 3)), "all zero"), (np.full((2, 3, 3), np.nan), "NaN or Inf in 18 of 18")):
        with pytest.raises(InputFileError, match=words):
            check_result(bad, "in.h5")


def test_std_beside_the_mean_follows_the_means_rule_and_is_checked_before_any_work(tmp_path):
    """A NIfTI std is replaced as its mean is; a leftover non-empty std series folder is refused up front, not after sampling."""
    from medrecon.errors import InputFileError
    from medrecon.tasks.outputs import check_std_output, check_volume_output

    (tmp_path / "dm_std.nii.gz").write_text("an earlier run's std")
    out, as_dicom = check_volume_output(tmp_path / "dm.nii.gz", [("the input", str(tmp_path / "in.h5"))])
    assert not as_dicom and check_std_output(out, as_dicom) == tmp_path / "dm_std.nii.gz"
    (tmp_path / "x_std.nii.gz").mkdir()
    with pytest.raises(InputFileError, match="std output"):
        check_volume_output(tmp_path / "x.nii.gz", [])  # before any work, not when the std is written
    (tmp_path / "series_std").mkdir()
    check_volume_output(str(tmp_path / "series") + "/", [])  # an empty std folder is fine
    (tmp_path / "series_std" / "IM0001.dcm").write_text("old")
    with pytest.raises(InputFileError, match="series_std.*std output"):
        check_volume_output(str(tmp_path / "series") + "/", [])
