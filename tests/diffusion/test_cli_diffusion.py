import json

import nibabel as nib
import numpy as np
import pytest
from mri_files import multicoil_volume, write_fastmri

from medrecon.cli.main import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("prior")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    imgs = np.stack(
        [
            np.exp(-((yy - rng.uniform(8, 24)) ** 2 + (xx - rng.uniform(8, 24)) ** 2) / 40.0) * np.exp(1j * rng.uniform(0, 3))
            for _ in range(24)
        ]
    ).astype(np.complex64)
    np.savez(d / "train.npz", images=imgs)
    cfg = d / "train.yaml"
    cfg.write_text(
        f"data:\n  paths: [{d / 'train.npz'}]\n"
        "prior:\n  channels: [16, 16]\n  attention_levels: [false, false]\n  num_head_channels: 16\n  norm_num_groups: 8\n"
        "train:\n  objective: ddpm\n  steps: 12\n  batch_size: 4\n  crop: 16\n  checkpoint_every: 6\n"
        f"output: {d / 'out'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    return d / "out"


def test_train_then_reconstruct_with_uncertainty(tmp_path, trained, capsys):
    info = json.loads((trained / "prior.json").read_text())
    assert info["training_steps"] == 12 and "24 slices from train.npz" in info["data"]
    assert (trained / "loss.csv").exists() and (trained / "loss.png").exists()
    full = write_fastmri(tmp_path / "full.h5", multicoil_volume(slices=1, coils=4, h=48, w=48), recon_size=(40, 40))
    under = tmp_path / "under.h5"
    assert main(["simulate", "mri", "--input", str(full), "--accel", "4", "--center-fraction", "0.2", "--out", str(under)]) == 0
    out = tmp_path / "r.nii.gz"
    assert (
        main(
            [
                "reconstruct",
                "mri",
                str(under),
                "--method",
                "diffusion",
                "--prior",
                str(trained),
                "--steps",
                "4",
                "--samples",
                "2",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    mean, std = nib.load(str(out)).get_fdata(), nib.load(str(tmp_path / "r_std.nii.gz")).get_fdata()
    assert mean.shape == std.shape == (40, 40, 1) and np.isfinite(mean).all() and (std >= 0).all() and std.max() > 0
    assert main(["evaluate", "--target", str(full), "--recon", str(out)]) == 0
    h5 = tmp_path / "r.h5"
    assert (
        main(
            [
                "reconstruct",
                "mri",
                str(under),
                "--method",
                "diffusion",
                "--prior",
                str(trained),
                "--sampler",
                "ddim",
                "--dc",
                "grad",
                "--steps",
                "3",
                "--quiet",
                "--out",
                str(h5),
            ]
        )
        == 0
    )
    warm = tmp_path / "w.h5"
    assert (
        main(
            [
                "reconstruct",
                "mri",
                str(under),
                "--method",
                "diffusion",
                "--prior",
                str(trained),
                "--start",
                "0.2",
                "--init",
                "sense",
                "--steps",
                "3",
                "--quiet",
                "--out",
                str(warm),
            ]
        )
        == 0
    )
    import h5py

    with h5py.File(warm) as f:
        assert f.attrs["start"] == 0.2 and f.attrs["init"] == "sense" and np.isfinite(f["reconstruction"][()]).all()


def test_diffusion_bad_input(tmp_path, trained, capsys):
    full = write_fastmri(tmp_path / "full.h5", multicoil_volume(slices=1, coils=4, h=48, w=48), recon_size=(40, 40))
    out = str(tmp_path / "r.nii.gz")
    cases = [
        (["--steps", "0"], "--steps: expected >= 1, got 0"),
        (["--sampler", "dds", "--dc", "hard"], "dds"),
        (["--dc", "hard", "--sampler", "ddim"], "exact only for single-coil"),
        (["--start", "0"], "--start: expected > 0, got 0"),
        (["--start", "1.5"], "--start: expected <= 1, got 1.5"),
        (["--set", "stepz=3"], "--set stepz: expected a key among"),
        (["--set", "steps=many"], "--set steps: expected a valid integer"),
        (["--start", "0.01", "--steps", "20"], "steps: expected 1..11"),
    ]
    for extra, msg in cases:
        assert (
            main(["reconstruct", "mri", str(full), "--method", "diffusion", "--prior", str(trained), "--quiet", *extra, "--out", out]) == 2
        )
        assert msg in capsys.readouterr().err
    import medrecon.priors as shipped

    real = shipped.shipped_prior_dir
    try:  # a source tree without the weights: a clear error, not a traceback
        shipped.shipped_prior_dir = lambda name: tmp_path / "no_such_prior"
        assert main(["reconstruct", "mri", str(full), "--method", "diffusion", "--prior", "brain", "--out", out]) == 2
        assert "shipped brain prior" in capsys.readouterr().err
    finally:
        shipped.shipped_prior_dir = real
    assert main(["reconstruct", "mri", str(full), "--method", "diffusion", "--prior", str(tmp_path), "--out", out]) == 2
    assert "prior.json" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  paths: [x.npz]\ntrain:\n  steps: 5\n  epochs: 3\noutput: o\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "train.epochs: expected a key among" in capsys.readouterr().err
    assert not (tmp_path / "r.nii.gz").exists()


def test_torchrun_two_cpu_processes_gloo(tmp_path, trained):
    """Data-parallel training with two CPU processes (gloo), started the way a user would."""
    import os
    import subprocess
    import sys

    cfg_text = (trained.parent / "train.yaml").read_text().replace(str(trained), str(tmp_path / "ddp"))
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(cfg_text.replace("steps: 12", "steps: 6").replace("checkpoint_every: 6", "checkpoint_every: 3"))
    import socket

    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        port,
        "-m",
        "medrecon",
        "train",
        "--config",
        str(cfg),
        "--quiet",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((tmp_path / "ddp" / "prior.json").read_text())
    assert info["training_steps"] == 6
    from safetensors.torch import load_file

    ck = load_file(str(tmp_path / "ddp" / "checkpoint.safetensors"))
    assert "rng.0" in ck and "rng.1" in ck and not torch_equal(ck["rng.0"], ck["rng.1"])


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


def test_slices_batched_equal_slices_one_by_one(trained):
    """Sampling S slices in one batch gives each slice what it gets alone (DDIM η = 0: the only
    randomness is the initial noise, drawn in the same order)."""
    import torch

    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.physics.fft import ifftc
    from medrecon.physics.mri.coils import rss
    from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slice, reconstruct_slices

    k = torch.from_numpy(multicoil_volume(slices=2, coils=3, h=32, w=32)).to(torch.complex64)
    img = ifftc(k)
    maps = img / rss(img, 1)[:, None].clamp(min=1e-6)
    mask = torch.zeros(1, 1, 1, 32)
    mask[..., ::2] = 1
    mask[..., 12:20] = 1
    ku = k * mask[0]
    d = load_prior(trained)
    cfg = DiffusionConfig(sampler="ddim", eta=0.0, steps=3, samples=2)
    g = torch.Generator().manual_seed(3)
    one = [reconstruct_slice(ku[i], maps[i], mask, d, cfg, g) for i in range(2)]
    both = reconstruct_slices(ku, maps, mask, d, cfg, torch.Generator().manual_seed(3))
    assert both[0].shape == both[1].shape == (2, 32, 32)
    for i in range(2):
        tol = 1e-4 * float(one[i][0].abs().max())
        assert torch.allclose(both[0][i], one[i][0], atol=tol) and torch.allclose(both[1][i], one[i][1], atol=tol)


def test_shipped_brain_prior_reconstructs(tmp_path):
    """--prior brain loads the prior shipped in the package (provenance in its JSON) and runs."""
    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.priors import shipped_prior_dir

    info = load_prior(shipped_prior_dir("brain")).info
    assert info["training_steps"] >= 5000 and "seg3D_MR" in info["data"] and info["prior"]["image_channels"] == 2
    assert (shipped_prior_dir("brain") / "NOTICE.md").read_text().count("MIT License") == 2
    full = write_fastmri(tmp_path / "full.h5", multicoil_volume(slices=1, coils=4, h=48, w=48), recon_size=(40, 40))
    under = tmp_path / "under.h5"
    assert main(["simulate", "mri", "--input", str(full), "--accel", "4", "--center-fraction", "0.2", "--out", str(under)]) == 0
    out = tmp_path / "b.nii.gz"
    assert (
        main(["reconstruct", "mri", str(under), "--method", "diffusion", "--prior", "brain", "--steps", "2", "--quiet", "--out", str(out)])
        == 0
    )
    assert np.isfinite(nib.load(str(out)).get_fdata()).all()


def test_unobserved_pixels_stay_zero(trained):
    """Where every coil map is zero nothing is measured: the diffusion estimate is zero there, as
    CG-SENSE's is, instead of what the prior would paint in."""
    import torch

    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.physics.fft import ifftc
    from medrecon.physics.mri.coils import rss
    from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slice

    k = torch.from_numpy(multicoil_volume(slices=1, coils=3, h=32, w=32)).to(torch.complex64)[0]
    img = ifftc(k)
    maps = img / rss(img, 0).clamp(min=1e-6)
    maps[:, :, :6] = 0  # a band outside the coils' support
    k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(maps * (img * maps.conj()).sum(0), dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    mask = torch.zeros(1, 1, 1, 32)
    mask[..., ::2] = 1
    mean, std = reconstruct_slice(
        k * mask[0], maps, mask, load_prior(trained), DiffusionConfig(steps=3, samples=2, start=1.0), torch.Generator().manual_seed(0)
    )
    assert float(mean[:, :6].abs().max()) == 0.0 and float(std[:, :6].max()) == 0.0
    assert float(mean[:, 6:].abs().max()) > 0


def test_warm_start_keeps_its_estimate_where_nothing_is_measured(trained):
    """A warm start from CS changes only what the data constrain: outside the coil support the
    result is the CS estimate, and with a start near the clean end it stays close to CS inside."""
    import torch

    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.physics.fft import ifftc
    from medrecon.physics.mri.coils import rss
    from medrecon.tasks.mri.classical import cs_l1_wavelet
    from medrecon.tasks.mri.diffusion import DiffusionConfig, reconstruct_slice

    k = torch.from_numpy(multicoil_volume(slices=1, coils=3, h=32, w=32)).to(torch.complex64)[0]
    img = ifftc(k)
    maps = img / rss(img, 0).clamp(min=1e-6)
    maps[:, :, :6] = 0
    k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(maps * (img * maps.conj()).sum(0), dim=(-2, -1)), norm="ortho"), dim=(-2, -1))
    mask = torch.zeros(1, 1, 1, 32)
    mask[..., ::2] = 1
    mask[..., 12:20] = 1
    ku = k * mask[0]
    cs = cs_l1_wavelet(ku[None], maps[None], mask, lam=3e-4, iters=100)[0]
    d = load_prior(trained)
    near = reconstruct_slice(ku, maps, mask, d, DiffusionConfig(steps=3, start=0.01, init="cs"), torch.Generator().manual_seed(0))[0]
    far = reconstruct_slice(ku, maps, mask, d, DiffusionConfig(steps=3, start=0.6, init="cs"), torch.Generator().manual_seed(0))[0]
    outside = cs[:, :6].abs().norm()  # SigPy's CS starts its eigenvalue estimate at random: equal to ~1e-4
    assert float(outside) > 0 and float((near - cs)[:, :6].abs().norm() / outside) < 0.05
    err = [float((x - cs)[:, 6:].abs().norm() / cs.abs().norm()) for x in (near, far)]
    assert err[0] < 0.1 and err[0] < err[1]


def _tiny_training(d, output):
    """A training set of 8 blobs and the YAML of a tiny prior trained 1 step per checkpoint."""
    yy, xx = np.mgrid[:16, :16]
    imgs = np.stack([np.exp(-((yy - 4 - k) ** 2 + (xx - 8) ** 2) / 10.0) for k in range(8)]).astype(np.complex64)
    np.savez(d / "blobs.npz", images=imgs)
    cfg = d / "tiny.yaml"
    cfg.write_text(
        f"data:\n  paths: [{d / 'blobs.npz'}]\n"
        "prior:\n  channels: [8, 8]\n  attention_levels: [false, false]\n  num_head_channels: 8\n  norm_num_groups: 4\n"
        "train:\n  steps: 1\n  batch_size: 2\n  crop: 8\n  checkpoint_every: 1\n"
        f"output: {output}\n"
    )
    return cfg


def test_resume_refuses_a_checkpoint_pair_from_two_saves(tmp_path, capsys):
    """Weights and JSON of different saves (a run killed between the two renames) are refused, not resumed."""
    import shutil

    out = tmp_path / "out"
    cfg = _tiny_training(tmp_path, out)
    ck, js = out / "checkpoint.safetensors", out / "checkpoint.json"
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    old = {p.name: shutil.copy(p, tmp_path / f"step1.{p.name}") for p in (ck, js)}
    # another run's save of the same step: the steps agree, the save tokens do not
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "other"), "--quiet"]) == 0
    shutil.copy(tmp_path / "other" / "checkpoint.json", js)
    assert main(["train", "--config", str(cfg), "--set", "train.steps=2", "--quiet"]) == 2
    assert "checkpoint.safetensors: save_id: expected the save token of checkpoint.json" in capsys.readouterr().err
    shutil.copy(old["checkpoint.json"], js)
    assert main(["train", "--config", str(cfg), "--set", "train.steps=2", "--quiet"]) == 0  # a consistent pair resumes
    assert json.loads(js.read_text())["step"] == 2
    new = {p.name: shutil.copy(p, tmp_path / f"step2.{p.name}") for p in (ck, js)}
    for stale in (js, ck):  # the JSON of step 1 beside step 2's weights, and the other way round
        shutil.copy(old[stale.name], stale)
        files = {p.name: p.read_bytes() for p in out.iterdir()}
        capsys.readouterr()
        assert main(["train", "--config", str(cfg), "--set", "train.steps=3", "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "checkpoint.safetensors: step: expected step" in err and "different saves" in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == files  # nothing written
        shutil.copy(new[stale.name], stale)
    assert main(["train", "--config", str(cfg), "--set", "train.steps=3", "--quiet"]) == 0
    assert json.loads((out / "prior.json").read_text())["training_steps"] == 3


def test_train_output_is_never_an_input(tmp_path, capsys):
    """The output folder may be neither a data file nor inside a data folder (a DICOM series)."""
    from medrecon.datasets.ct_volume import write_dicom_series

    cfg = _tiny_training(tmp_path, tmp_path / "out")
    data = tmp_path / "blobs.npz"
    series = write_dicom_series(np.full((2, 16, 16), 40.0), np.diag([-1.0, -1.0, 2.0, 1.0]), tmp_path / "series")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for extra, match in (
        (["--output", str(data)], "--output: expected a path that is not one of the inputs, got the same file as data.paths"),
        (["--output", str(cfg)], "--output: expected a path that is not one of the inputs, got the same file as --config"),
        (
            ["--output", str(series / "prior"), "--set", f"data.paths=[{series}]", "--set", "data.intensity=hu"],
            "--output: expected a path outside the input folders",
        ),
    ):
        assert main(["train", "--config", str(cfg), "--quiet", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and match in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
