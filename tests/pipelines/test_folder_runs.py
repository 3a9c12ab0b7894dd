"""Folder in, folder out: every input once, finished outputs skipped, bad entries reported, torchrun ranks share a folder."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import assert_refused
from mri_files import multicoil_volume, write_fastmri

from medrecon.cli.main import main
from medrecon.errors import ArgumentError
from medrecon.tasks.folder_run import FolderSpec, _one_entry, folder_entries, h5_name, run_inputs
from medrecon.tasks.run_records import claim, log_folder


def _fastmri_folder(folder: Path, n: int, slices: int = 2) -> Path:
    folder.mkdir()
    for i in range(n):
        write_fastmri(folder / f"file{i}.h5", multicoil_volume(slices=slices, coils=4, h=48, w=48, seed=i), recon_size=(32, 32))
    return folder


@pytest.fixture(scope="module")
def under(tmp_path_factory):
    """A folder of three undersampled fastMRI files (simulated from a folder of fully sampled ones)."""
    root = tmp_path_factory.mktemp("folders")
    full = _fastmri_folder(root / "full", 3)
    assert main(["simulate", "mri", "--input", str(full), "--accel", "4", "--seed", "1", "--out", str(root / "under"), "--quiet"]) == 0
    return root / "under"


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.glob("*.h5")):
        with h5py.File(p) as f:
            out[p.name] = f["reconstruction"][()]
    return out


def _logs(folder: Path) -> list[list[dict]]:
    return [[json.loads(line) for line in p.read_text().splitlines()] for p in sorted(log_folder(folder).glob("run_*.jsonl"))]


def test_folder_reconstruction_writes_each_volume_once_and_skips_finished(tmp_path, under, capsys):
    out = tmp_path / "recon"
    assert main(["reconstruct", "mri", str(under), "--method", "sense", "--out", str(out), "--quiet"]) == 0
    first = _outputs(out)
    assert sorted(first) == ["file0.h5", "file1.h5", "file2.h5"]
    with h5py.File(out / "file0.h5") as f:  # a fastMRI submission file, no machine paths
        assert f["reconstruction"].shape == (2, 32, 32) and f.attrs["source"] == "file0.h5" and f.attrs["acceleration"] == 4
    (log,) = _logs(out)
    start = log[0]
    assert start["event"] == "start" and start["settings"]["method"] == "sense" and "torch" in start["versions"]
    assert [r["status"] for r in log if r["event"] == "entry"] == ["done"] * 3 and log[-1]["done"] == 3
    fm_eval = pytest.importorskip("fastmri.evaluate")  # the folders are what fastMRI's evaluate.py reads

    ref = fm_eval.evaluate(
        argparse.Namespace(target_path=under, predictions_path=out, acquisition=None, acceleration=None), "reconstruction_rss"
    )
    js = out.with_name("m.json")
    assert main(["evaluate", "--target", str(under), "--recon", str(out), "--json", str(js), "--quiet"]) == 0
    assert json.loads(js.read_text())["metrics"]["PSNR"]["mean"] == pytest.approx(ref.means()["PSNR"], rel=1e-6)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")}
    capsys.readouterr()
    assert main(["reconstruct", "mri", str(under), "--method", "sense", "--out", str(out), "--quiet"]) == 0
    assert "0 written, 3 finished" in capsys.readouterr().out
    assert main(["reconstruct", "mri", str(under), "--method", "cs", "--out", str(out), "--quiet"]) == 0  # other settings: said
    assert "other settings (method: 'sense' → 'cs')" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.h5")} == mtimes
    # the output folder holds the outputs only (fastMRI's evaluate.py opens every file of a folder)
    assert folder_entries(out, FolderSpec((".h5",), h5_name))[1] == [] and not list(out.glob(".*"))


def test_bad_entries_are_reported_and_the_rest_processed(tmp_path, under, capsys):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in under.glob("*.h5"):
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "broken.h5").write_bytes(b"not hdf5")
    (mixed / "notes.txt").write_text("x")
    (mixed / ".hidden").write_text("x")
    out = tmp_path / "recon"
    assert main(["reconstruct", "mri", str(mixed), "--method", "zf", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "broken.h5" in err and "notes.txt" in err and ".hidden" not in err
    assert sorted(_outputs(out)) == ["file0.h5", "file1.h5", "file2.h5"]
    statuses = {r["input"]: r["status"] for r in _logs(out)[0] if r["event"] == "entry"}
    assert statuses["broken.h5"] == "failed" and statuses["notes.txt"] == "other type"
    assert not list(out.glob(".*"))  # no claims or temporaries left


def test_folder_outputs_are_refused_where_they_would_harm(tmp_path, under, capsys):
    assert_refused(["reconstruct", "mri", under, "--method", "zf", "--out", under / "recon"], capsys, "inside the folder", under)
    assert_refused(
        ["reconstruct", "mri", under, "--method", "zf", "--out", tmp_path / "r.h5"], capsys, "a folder for the outputs", tmp_path
    )
    (tmp_path / "afile").write_text("x")
    assert_refused(["reconstruct", "mri", under, "--method", "zf", "--out", tmp_path / "afile"], capsys, "an existing file", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_refused(["reconstruct", "mri", empty, "--method", "zf", "--out", tmp_path / "r"], capsys, "a folder with none", tmp_path)


def test_one_input_under_several_ranks_is_refused(monkeypatch, under):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")

    args = argparse.Namespace(input=str(under / "file0.h5"), out="x.h5", quiet=True, device="cpu")
    with pytest.raises(ArgumentError, match="every rank would write the same output"):
        run_inputs(args, lambda a: 0, FolderSpec((".h5",), h5_name))
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ArgumentError, match="RANK < WORLD_SIZE"):
        run_inputs(args, lambda a: 0, FolderSpec((".h5",), h5_name))


def test_claims_keep_two_runs_off_one_output_and_stale_claims_are_taken_over(tmp_path):
    target = tmp_path / "v.h5"
    with claim(target) as mine:
        assert mine
        with claim(target) as again:  # held by a live process (this one)
            assert not again
    assert not (tmp_path / ".v.h5.claim").exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    from medrecon.atomic import owner_tag

    host = owner_tag().rpartition("-")[0]
    (tmp_path / ".v.h5.claim").write_text(f"{host}-{dead}")
    with claim(target) as mine:
        assert mine
    target.write_text("finished")  # killed after its output was written, before the claim was dropped
    (tmp_path / ".v.h5.claim").write_text(f"{host}-{dead}")
    entry = (argparse.Namespace(), lambda a: 0, tmp_path / "in.h5", target, {}, "input")
    assert _one_entry(*entry, done_before={"v.h5"}) == "skipped"
    assert not (tmp_path / ".v.h5.claim").exists()
    assert _one_entry(*entry) == "existing"  # a file no run log records: never overwritten
    assert target.read_text() == "finished"
    (tmp_path / ".v.h5.claim").write_text(f"{host}-{dead}")  # killed after writing, before logging: the claim proves it ours
    records = []
    assert _one_entry(*entry, record=lambda *r, **kw: records.append((r, kw))) == "skipped"
    assert records[0][0][0] == "done" and "recovered" in records[0][1]  # logged now, so later runs skip it too
    assert not (tmp_path / ".v.h5.claim").exists() and target.read_text() == "finished"
    claimed = []
    ran = (argparse.Namespace(), lambda a: claimed.append((tmp_path / ".w.h5.claim").exists()) or 0, tmp_path / "in.h5")
    _one_entry(*ran, tmp_path / "w.h5", {}, "input", record=lambda *r, **kw: claimed.append((tmp_path / ".w.h5.claim").exists()))
    assert claimed == [True, True]  # the outcome is logged while the claim is still held


def _cli(*argv: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "medrecon", *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_a_killed_folder_run_resumes_to_identical_outputs(tmp_path):
    src = _fastmri_folder(tmp_path / "full", 4, slices=3)
    args = ["--method", "cs", "--iters", "60", "--quiet"]
    clean = tmp_path / "clean"
    assert _cli("reconstruct", "mri", str(src), "--out", str(clean), *args).wait(timeout=300) == 0
    out = tmp_path / "killed"
    proc = _cli("reconstruct", "mri", str(src), "--out", str(out), *args)
    deadline = time.time() + 300
    while not (out / "file1.h5").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= len(list(out.glob("file*.h5"))) < 4  # killed midway
    rerun = _cli("reconstruct", "mri", str(src), "--out", str(out), *args)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read().decode()
    expected, got = _outputs(clean), _outputs(out)
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    assert not list(out.glob(".*"))  # the killed run's claim and temporary are gone


def test_torchrun_ranks_share_a_folder(tmp_path, under):
    out = tmp_path / "recon"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "medrecon"]
    cmd += ["reconstruct", "mri", str(under), "--method", "sense", "--out", str(out), "--quiet"]
    run = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    logs = _logs(out)
    assert sorted(log[0]["rank"] for log in logs) == [0, 1] and all(log[0]["world_size"] == 2 for log in logs)
    done = [r["input"] for log in logs for r in log if r["event"] == "entry" and r["status"] == "done"]
    assert sorted(done) == ["file0.h5", "file1.h5", "file2.h5"]  # each volume by exactly one rank
    single = tmp_path / "single"  # one process with the same thread count writes the same files
    assert _cli("reconstruct", "mri", str(under), "--method", "sense", "--out", str(single), "--quiet").wait(timeout=300) == 0
    for name, vol in _outputs(single).items():
        np.testing.assert_array_equal(_outputs(out)[name], vol)


def _ct_volume(k: int) -> np.ndarray:
    yy, xx = np.mgrid[:48, :48] - 23.5
    sl = np.full((48, 48), -1000.0)
    sl[xx**2 + yy**2 < 20**2] = 40.0 + 20 * k
    sl[(xx - 6) ** 2 + yy**2 < 5**2] = 700.0
    return np.stack([sl + 10 * s for s in range(2)])


def test_ct_folders_of_series_and_nifti_round_trip(tmp_path, capsys):
    from medrecon.datasets.ct_volume import CTVolume, read_ct, write_ct_nifti, write_dicom_series

    cts = tmp_path / "cts"
    cts.mkdir()
    aff = np.diag([-1.5, -1.5, 3.0, 1.0])
    write_dicom_series(_ct_volume(0), aff, cts / "patient0")  # a series folder is one input
    write_ct_nifti(CTVolume(_ct_volume(1), aff, "generated"), cts / "patient1.nii.gz")
    sinos = tmp_path / "sinos"
    assert main(["simulate", "ct", "--input", str(cts), "--views", "60", "--dose", "0", "--out", str(sinos), "--quiet"]) == 0
    assert sorted(p.name for p in sinos.glob("*.h5")) == ["patient0.h5", "patient1.h5"]
    with h5py.File(sinos / "patient1.h5") as f:
        assert "/" not in str(f.attrs["source"])  # no machine paths
    recon = tmp_path / "recon"
    assert main(["reconstruct", "ct", str(sinos), "--method", "fbp", "--out", str(recon), "--quiet"]) == 0
    assert sorted(p.name for p in recon.glob("*.nii.gz")) == ["patient0.nii.gz", "patient1.nii.gz"]
    series = tmp_path / "series"
    assert main(["reconstruct", "ct", str(sinos), "--method", "fbp", "--out-format", "dicom", "--out", str(series), "--quiet"]) == 0
    np.testing.assert_allclose(read_ct(series / "patient1").hu, read_ct(recon / "patient1.nii.gz").hu, atol=1.0)
    truth = tmp_path / "truth"
    truth.mkdir()
    for k in range(2):
        write_ct_nifti(CTVolume(_ct_volume(k), aff, "generated"), truth / f"patient{k}.nii.gz")
    capsys.readouterr()
    js = tmp_path / "hu.json"
    assert main(["evaluate", "--target", str(truth), "--recon", str(recon), "--window", "-1000", "1000", "--json", str(js), "--quiet"]) == 0
    doc = json.loads(js.read_text())
    assert doc["volumes"] == 2 and doc["metrics"]["PSNR"]["mean"] > 20
    assert_refused(["evaluate", "--target", truth, "--recon", recon], capsys, "evaluated in HU", tmp_path)
    assert_refused(
        ["reconstruct", "ct", sinos / "patient0.h5", "--out-format", "dicom", "--out", tmp_path / "x"], capsys, "--out-format", tmp_path
    )


def test_translate_folder_pairs_nothing_and_writes_one_sct_per_mr(tmp_path):
    from mr2ct.head_phantom import head, write_nifti

    mrs = tmp_path / "mrs"
    mrs.mkdir()
    for k in range(2):
        write_nifti(head(slices=4)[1] * (800 + 100 * k), mrs / f"s{k}.nii.gz")
    out = tmp_path / "sct"
    assert main(["translate", "mr2ct", "--input", str(mrs), "--method", "bulk", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.glob("*.nii.gz")) == ["s0.nii.gz", "s1.nii.gz"]


def test_outputs_that_are_not_ours_and_name_clashes_are_errors(tmp_path, under, capsys):
    """An output folder holding other files (the ground truth, say) is not overwritten, and the run says so;
    two inputs with one output name are refused before any work."""
    truth = tmp_path / "truth"
    truth.mkdir()
    (truth / "file0.h5").write_bytes((under / "file0.h5").read_bytes())
    before = (truth / "file0.h5").read_bytes()
    assert main(["reconstruct", "mri", str(under), "--method", "zf", "--out", str(truth), "--quiet"]) == 2
    assert "1 already there but not written by a logged run" in capsys.readouterr().out
    assert (truth / "file0.h5").read_bytes() == before and (truth / "file1.h5").exists()
    clash = tmp_path / "clash"
    clash.mkdir()
    for name in ("a.h5", "a.hdf5"):
        (clash / name).write_bytes((under / "file0.h5").read_bytes())
    assert_refused(
        ["reconstruct", "mri", clash, "--method", "zf", "--out", tmp_path / "r"], capsys, "a.h5 and a.hdf5 both give a.h5", tmp_path
    )


def test_dotted_series_names_and_the_current_folder_as_output(tmp_path, monkeypatch, capsys):
    from medrecon.datasets.ct_volume import write_dicom_series

    cts = tmp_path / "cts"
    cts.mkdir()
    aff = np.diag([-1.5, -1.5, 3.0, 1.0])
    for uid in ("1.2.840.99.1", "1.2.840.99.2"):  # series folders named by UID: one output each
        write_dicom_series(_ct_volume(int(uid[-1])), aff, cts / uid)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["simulate", "ct", "--input", str(cts), "--views", "30", "--dose", "0", "--out", ".", "--quiet"]) == 0
    assert sorted(p.name for p in work.glob("*.h5")) == ["1.2.840.99.1.h5", "1.2.840.99.2.h5"]
    assert (tmp_path / "work.logs").is_dir()
    assert (
        main(["reconstruct", "ct", str(work), "--method", "fbp", "--out-format", "dicom", "--out", str(tmp_path / "series"), "--quiet"])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "series").iterdir()) == ["1.2.840.99.1", "1.2.840.99.2"]


def test_a_std_left_without_its_mean_is_replaced(tmp_path):
    from medrecon.tasks.folder_run import _remove_orphan_std

    out = tmp_path / "out"
    out.mkdir()
    (out / "v_std.nii.gz").write_text("orphan")  # a run killed between writing the std and the mean
    (out / "w_std.nii.gz").write_text("an input's own output")
    _remove_orphan_std(out / "v.nii.gz", {"v.nii.gz", "w.nii.gz"})
    _remove_orphan_std(out / "w.nii.gz", {"w.nii.gz", "w_std.nii.gz"})
    assert sorted(p.name for p in out.iterdir()) == ["w_std.nii.gz"]
    (out / "series_std").mkdir()
    _remove_orphan_std(out / "series", {"series"})
    assert not (out / "series_std").exists()
