"""CT with a diffusion prior: prior scale, pair simulation, pooled training data, the DC weight rule, z-coupling, CLI."""

import json
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch

from medrecon.cli.main import main
from medrecon.diffusion.consistency import ProximalCG, SliceCoupling
from medrecon.diffusion.denoiser import Denoiser
from medrecon.diffusion.pairs import TrainingPairs
from medrecon.diffusion.schedule import VPSchedule
from medrecon.physics.ct import CTGeometry, CTProjector
from medrecon.physics.ct.transmission import HU_NORMALISATION, MU_WATER_PER_MM
from medrecon.physics.gradient import SliceDifference
from medrecon.physics.linop import Diagonal
from medrecon.tasks.ct.config import CTDiffusionConfig
from medrecon.tasks.ct.diffusion import reconstruct_slices, reconstruct_volume
from medrecon.tasks.ct.pairs import condition_image, limited_angle_fbp, to_line_integrals


def _phantom(n=3, size=48, seed=0):
    """Slices on the CT priors' scale (HU / 1000): air, a water disc, a bone insert that moves."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = []
    for _ in range(n):
        x = np.full((size, size), -1.0)
        x[xx**2 + yy**2 < (0.4 * size) ** 2] = 0.04
        cx, cy = rng.uniform(-5, 5, 2)
        x[(xx - cx) ** 2 + (yy - cy) ** 2 < 16] = 0.8
        out.append(x)
    return torch.tensor(np.stack(out), dtype=torch.float32)


class ShrinkCT(Denoiser):
    """An unconditional stand-in prior: D(x, σ) = x / (1 + σ²), with a CT prior's record."""

    complex_data = False
    schedule = VPSchedule()
    info = {"normalisation": HU_NORMALISATION}

    def forward(self, x, sigma, cond=None):
        return x / (1.0 + sigma.reshape(-1, 1, 1) ** 2)


def test_prior_scale_data_are_linear_in_x():
    """y = p / μ_w − A 1 equals A x, and FBP of a full, dense scan returns x (HU / 1000) to within a few HU."""
    x = _phantom(2, 64)
    geom = CTGeometry.create("parallel", (64, 64), (1.0, 1.0), 360)
    op = CTProjector(geom)
    p = to_line_integrals(x, op)
    y = p / MU_WATER_PER_MM - op(torch.ones(1, 64, 64))
    assert torch.allclose(y, op(x), rtol=1e-4, atol=1e-3 * float(y.abs().max()))
    inner = (slice(None), slice(16, 48), slice(16, 48))
    err_hu = 1000 * (condition_image(p, geom, op) - x)[inner].abs().mean()
    assert float(err_hu) < 30.0


def test_simulator_is_reproducible_and_its_options_are_checked():
    x = _phantom(2, 48)
    sim = limited_angle_fbp(arc_min_deg=60, arc_max_deg=90, dose_min=1e4, dose_max=1e5, pixel_mm=1.0)
    a = sim(x, torch.Generator().manual_seed(3))
    b = sim(x, torch.Generator().manual_seed(3))
    c = sim(x, torch.Generator().manual_seed(4))
    assert a.shape == (2, 1, 48, 48) and torch.equal(a, b) and not torch.equal(a, c)
    noiseless = limited_angle_fbp(arc_min_deg=150, arc_max_deg=150, dose_min=0, pixel_mm=1.0)(x, torch.Generator().manual_seed(3))
    assert float((noiseless - x[:, None]).abs().mean()) < float((a - x[:, None]).abs().mean())  # wider arc, no noise: closer
    from medrecon.errors import ArgumentError

    for bad in ({"arc_min_deg": 0}, {"arc_min_deg": 100, "arc_max_deg": 90}, {"dose_max": float("inf")}, {"beam": "cone"}):
        with pytest.raises(ArgumentError, match="data.condition.options"):
            limited_angle_fbp(**bad)


def test_pooled_simulation_resumes_exactly():
    """The pool is a function of the step: a fresh object at step k draws what a continuing one draws."""
    calls = []

    def sim(images, g):
        calls.append(1)
        return (images + torch.rand((images.shape[0], 1, 1), generator=g))[:, None]

    imgs = _phantom(5, 24)
    run = TrainingPairs(imgs, simulate=sim, crop=8, seed=2, pool=4, refresh=1)
    g = torch.Generator().manual_seed(0)
    batches, states = [], []
    for step in range(7):
        states.append(g.get_state())
        batches.append(run.batch(3, g, step))
    assert len(calls) == 4 + 7  # first fill, then one per step
    resumed = TrainingPairs(imgs, simulate=sim, crop=8, seed=2, pool=4, refresh=1)
    g2 = torch.Generator()
    g2.set_state(states[4])
    for step in range(4, 7):
        xb, cb = resumed.batch(3, g2, step)
        assert torch.equal(xb, batches[step][0]) and torch.equal(cb, batches[step][1])
    with pytest.raises(ValueError, match="pool"):
        TrainingPairs(imgs, simulate=sim, pool=2, refresh=3)


def test_joint_cg_with_a_slice_coupling():
    # (SliceDifference's values and adjoint: tests/physics/test_linop.py)
    # a coupled CG step solves the joint normal equations (dense check on a tiny problem)
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 4, generator=g)
    w = Diagonal(a)
    y = torch.randn(3, 4, 4, generator=g)
    x0 = torch.randn(3, 4, 4, generator=g)
    dc = ProximalCG(w, y, iters=60, lam=0.5, coupling=SliceDifference(1), coupling_weight=2.0)
    x = dc(x0, 0.0)
    residual = w.normal(x) + 0.5 * x + 2.0 * SliceDifference(1).normal(x) - (w.adjoint(y) + 0.5 * x0)
    assert float(residual.abs().max()) < 1e-4
    uncoupled = ProximalCG(w, y, iters=60, lam=0.5)(x0, 0.0)
    assert float(SliceDifference(1)(x).norm()) < float(SliceDifference(1)(uncoupled).norm())
    # anchored: the slice before the first is held fixed, β||R x − r||² with r = (anchor, 0, 0)
    anchor = torch.randn(1, 4, 4, generator=g)
    r, target = SliceDifference(1, anchored=True), torch.cat((anchor, torch.zeros(2, 4, 4)))
    xa = ProximalCG(w, y, iters=80, lam=0.5, coupling=r, coupling_weight=2.0, coupling_target=target)(x0, 0.0)
    residual = w.normal(xa) + 0.5 * xa + 2.0 * r.normal(xa) - (w.adjoint(y) + 0.5 * x0 + 2.0 * r.adjoint(target))
    assert float(residual.abs().max()) < 1e-4
    assert float((xa[0] - anchor).norm()) < float((x[0] - anchor).norm())
    xs = SliceCoupling(r, 2.0, iters=40, target=target)(x0, 0.0)  # no measurements: (I + βRᴴR) x = x̂₀ + βRᴴr
    assert float((xs + 2.0 * r.normal(xs) - x0 - 2.0 * r.adjoint(target)).abs().max()) < 1e-4


def test_batches_of_a_volume_join_without_a_step():
    """Slices sampled one batch at a time: anchoring each batch to the one before shrinks the step at the boundaries."""
    x = _phantom(4, 32)
    x[:, 10:20, 10:20] = 0.3  # the same insert in every slice: the true volume is constant there along z
    geom = CTGeometry.create("parallel", (32, 32), (1.0, 1.0), 30, arc_deg=90)
    p = to_line_integrals(x, CTProjector(geom))
    cfg = CTDiffusionConfig(steps=4, samples=2, start=1.0, dc_iters=3, batch_slices=1, condition="none", z_coupling=1.0)
    joined, _ = reconstruct_volume(p.numpy(), geom, ShrinkCT(), cfg)
    g = torch.Generator().manual_seed(cfg.seed)
    apart = torch.cat([reconstruct_slices(p[s : s + 1], geom, ShrinkCT(), cfg, g).mean for s in range(4)]).numpy()
    step = lambda v: float(np.abs(np.diff(v[:, 10:20, 10:20], axis=0)).mean())  # noqa: E731
    assert step(joined) < 0.7 * step(apart)


def _scan(views=24):
    x = _phantom(3, 32)
    geom = CTGeometry.create("parallel", (32, 32), (1.0, 1.0), views, arc_deg=90)
    p = to_line_integrals(x, CTProjector(geom))
    return x, geom, p


def test_dc_weight_rule_is_geometry_free():
    """λ = dc_lam·||W^½A||²: the same scan with every view recorded twice gives the same reconstruction."""
    x, geom, p = _scan()
    twice = replace(geom, angles_rad=tuple(a for a in geom.angles_rad for _ in range(2)))
    p2 = p.repeat_interleave(2, dim=1)
    cfg = CTDiffusionConfig(steps=4, samples=2, start=1.0, dc_lam=0.05, dc_iters=3, batch_slices=3, condition="none")
    r1 = reconstruct_slices(p, geom, ShrinkCT(), cfg, torch.Generator().manual_seed(0))
    one, s1 = r1.mean, r1.std
    r2 = reconstruct_slices(p2, twice, ShrinkCT(), cfg, torch.Generator().manual_seed(0))
    two, s2 = r2.mean, r2.std
    assert torch.allclose(one, two, atol=0.5) and torch.allclose(s1, s2, atol=0.5)  # HU
    # and the data term moved the estimate towards the scan, away from the shrinking prior's 0 HU
    assert float((one - 1000 * x).abs().mean()) < 0.8 * float((1000 * x).abs().mean())


def test_z_coupling_reduces_slice_to_slice_flicker():
    x, geom, p = _scan()
    base = CTDiffusionConfig(steps=4, samples=1, start=1.0, dc_iters=3, batch_slices=3, condition="none", z_coupling=0.0)
    free = reconstruct_slices(p, geom, ShrinkCT(), base, torch.Generator().manual_seed(0)).mean
    tied = reconstruct_slices(p, geom, ShrinkCT(), base.model_copy(update={"z_coupling": 1.0}), torch.Generator().manual_seed(0)).mean
    flicker = lambda v: float((v[1:] - v[:-1]).abs().mean())  # noqa: E731
    assert flicker(tied) < flicker(free)


def test_tiled_network_windows_match_whole_slices():
    """tile > 0: the network sees windows of the slice; a pixel-wise prior gives the same reconstruction."""

    class Recording(ShrinkCT):
        sizes: list = []
        info = {**ShrinkCT.info, "train_config": {"crop": 16}}  # trained on patches

        def forward(self, x, sigma, cond=None):
            self.sizes.append(tuple(x.shape[-2:]))
            return super().forward(x, sigma, cond)

    x, geom, p = _scan()
    cfg = CTDiffusionConfig(steps=3, samples=1, start=1.0, dc_iters=3, batch_slices=3, condition="none")
    whole = reconstruct_slices(p, geom, Recording(), cfg, torch.Generator().manual_seed(0)).mean
    assert set(Recording.sizes) == {(32, 32)}
    Recording.sizes.clear()
    tiled = reconstruct_slices(p, geom, Recording(), cfg.model_copy(update={"tile": 16}), torch.Generator().manual_seed(0)).mean
    assert set(Recording.sizes) == {(16, 16)}
    assert torch.allclose(whole, tiled, atol=0.5)  # HU
    Recording.sizes.clear()
    Recording.info = ShrinkCT.info  # a prior trained on whole slices sees whole slices
    reconstruct_slices(p, geom, Recording(), cfg.model_copy(update={"tile": 16}), torch.Generator().manual_seed(0))
    assert set(Recording.sizes) == {(32, 32)}
    with pytest.raises(ValueError, match="tile"):
        CTDiffusionConfig(tile=4)


def _tiny_ct_prior(tmp_path):
    """A CT volume in HU (NIfTI), a tiny conditional prior trained on it for 2 steps, through `medrecon train`."""
    hu = np.transpose(1000.0 * _phantom(6, 32).numpy(), (2, 1, 0))  # NIfTI (i, j, k)
    nib.save(nib.Nifti1Image(hu.astype(np.float32), np.diag([1.0, 1.0, 3.0, 1.0])), tmp_path / "ct.nii.gz")
    cfg = tmp_path / "ct.yaml"
    cfg.write_text(
        f"data:\n  paths: [{tmp_path / 'ct.nii.gz'}]\n  intensity: hu\n"
        f"  holdout:\n    - {{path: {tmp_path / 'ct.nii.gz'}, slices: [4, 5]}}\n"
        "  condition:\n    simulate: ct_limited_angle_fbp\n    options: {arc_min_deg: 60, arc_max_deg: 120}\n    pool: 3\n"
        "prior:\n  channels: [8, 8]\n  attention_levels: [false, false]\n  num_head_channels: 8\n  norm_num_groups: 4\n"
        "train:\n  steps: 2\n  batch_size: 2\n  crop: 16\n  checkpoint_every: 2\n  cond_dropout: 0.5\n"
        f"output: {tmp_path / 'prior'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    return tmp_path / "ct.nii.gz", tmp_path / "prior"


def test_train_simulate_reconstruct_with_a_ct_prior(tmp_path, capsys):
    volume, prior = _tiny_ct_prior(tmp_path)
    info = json.loads((prior / "prior.json").read_text())
    assert info["normalisation"] == HU_NORMALISATION and info["pixel_mm"] == 1.0
    assert info["holdout"] == [{"path": "ct.nii.gz", "slices": [4, 5]}] and "4 slices" in info["data"]
    assert info["condition"]["options"]["pixel_mm"] == 1.0 and info["prior"]["cond_channels"] == 1
    sino = tmp_path / "sino.h5"
    assert (
        main(["simulate", "ct", "--input", str(volume), "--arc", "90", "--views", "30", "--slices", "4-5", "--out", str(sino), "--quiet"])
        == 0
    )
    args = ["reconstruct", "ct", str(sino), "--prior", str(prior), "--steps", "2", "--samples", "2", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "dm.nii.gz")]) == 0
    mean, std = nib.load(tmp_path / "dm.nii.gz"), nib.load(tmp_path / "dm_std.nii.gz")
    assert mean.shape == std.shape == (32, 32, 2) and np.all(np.isfinite(mean.get_fdata())) and std.get_fdata().min() >= 0
    assert main([*args, "--out", str(tmp_path / "dcm") + "/", "--set", "condition=none"]) == 0
    assert len(list((tmp_path / "dcm").iterdir())) == 2 and len(list((tmp_path / "dcm_std").iterdir())) == 2
    capsys.readouterr()
    # a prior trained on another pixel size, a fan-beam scan for a parallel-beam conditional prior, an MRI prior
    bad_pixel = tmp_path / "sino_px.h5"
    nib.save(nib.Nifti1Image(nib.load(volume).get_fdata().astype(np.float32), np.diag([2.0, 2.0, 3.0, 1.0])), tmp_path / "px.nii.gz")
    main(["simulate", "ct", "--input", str(tmp_path / "px.nii.gz"), "--views", "20", "--slices", "0-0", "--out", str(bad_pixel), "--quiet"])
    assert main(["reconstruct", "ct", str(bad_pixel), "--prior", str(prior), "--out", str(tmp_path / "x.nii.gz"), "--quiet"]) == 2
    assert "pixel size: expected 1 mm" in capsys.readouterr().err
    fan = tmp_path / "fan.h5"
    main(["simulate", "ct", "--input", str(volume), "--geometry", "fan", "--views", "20", "--slices", "0-0", "--out", str(fan), "--quiet"])
    assert main(["reconstruct", "ct", str(fan), "--prior", str(prior), "--out", str(tmp_path / "y.nii.gz"), "--quiet"]) == 2
    assert "parallel-beam FBP images, the scan is fan beam" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "y.nii.gz").exists()
    assert main(["reconstruct", "ct", str(sino), "--prior", "brain", "--out", str(tmp_path / "z.nii.gz"), "--quiet"]) == 2
    assert "expected a CT prior" in capsys.readouterr().err
    from mri_files import multicoil_volume, write_fastmri

    kspace = write_fastmri(tmp_path / "mri.h5", multicoil_volume(slices=1))
    assert main(["reconstruct", "mri", str(kspace), "--prior", str(prior), "--out", str(tmp_path / "m.nii.gz"), "--quiet"]) == 2
    assert "MRI prior, got a real-valued one" in capsys.readouterr().err and not (tmp_path / "m.nii.gz").exists()
    for bad in (["--arc", "0"], ["--arc", "400"], ["--views", "0"]):
        assert main(["simulate", "ct", "--input", str(volume), *bad, "--out", str(tmp_path / "b.h5"), "--quiet"]) == 2
    assert not (tmp_path / "b.h5").exists()


def test_shipped_ct_prior():
    """`--prior ct` is in the package: a conditional CT prior with its data, hold-out, pixel size and settings recorded."""
    from medrecon.diffusion.prior_folder import load_prior
    from medrecon.runtime import resolve_prior
    from medrecon.tasks.ct.config import recommended_settings

    folder = resolve_prior("ct")
    d = load_prior(folder)
    assert (folder / "NOTICE.md").is_file() and (folder / "prior.safetensors").stat().st_size < 20e6
    assert d.info["normalisation"] == HU_NORMALISATION and d.net.cond_channels == 1 and not d.complex_data
    assert d.info["holdout"] == [{"path": "totalseg_abdomen_ct_dicom", "slices": [8, 11]}] and d.info["training_steps"] > 0
    assert abs(d.info["pixel_mm"] - 0.9765625) < 1e-6 and d.info["condition"]["simulate"] == "ct_limited_angle_fbp"
    rec = recommended_settings(d.info, 100.0)
    mid = CTDiffusionConfig(**rec)
    assert (mid.init, mid.tv_lam, mid.start) == ("tv", 0.3, 0.5) and recommended_settings({}, 90.0) == {}
    wide, narrow = CTDiffusionConfig(**recommended_settings(d.info, 120.0)), CTDiffusionConfig(**recommended_settings(d.info, 60.0))
    assert (wide.init, wide.tv_lam, wide.start) == ("tv", 1.0, 0.2) and (narrow.init, narrow.tv_lam, narrow.start) == ("tv", 0.3, 0.4)
    sparse = CTDiffusionConfig(**recommended_settings(d.info, 180.0))
    assert (sparse.init, sparse.tv_lam, sparse.start) == ("tv", 0.3, 0.2)
    assert {wide.condition, narrow.condition, sparse.condition, CTDiffusionConfig(**rec).condition} == {"fbp"}
    assert d.info["condition"]["options"]["arc_max_deg"] >= 180  # the 180° entry is inside the training arcs
    assert recommended_settings(d.info, 360.0) == recommended_settings(d.info, 180.0)  # full scans: the sparse-view entry
    out = d(torch.zeros(1, 64, 64), torch.tensor([10.0]), torch.zeros(1, 1, 64, 64))
    assert out.shape == (1, 64, 64) and torch.isfinite(out).all()
