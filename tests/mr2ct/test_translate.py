"""translate mr2ct: the prior's grid and back, a trained regression baseline, the sampler loop, NIfTI and DICOM out."""

import numpy as np
import pytest
import torch
from conftest import assert_refused
from head_phantom import AFFINE, head, make_subject, sct_config, write_nifti

from medrecon.cli.main import main
from medrecon.datasets.ct_volume import read_ct
from medrecon.datasets.mr_volume import read_mr
from medrecon.diffusion.mirror_views import mirror_dim
from medrecon.diffusion.prior_folder import load_prior
from medrecon.evaluation.sct_metrics import sct_metrics
from medrecon.tasks.mr2ct.config import TranslateConfig
from medrecon.tasks.mr2ct.grid import Grid, prior_grid, resample
from medrecon.tasks.mr2ct.translate import sample_slices, translate_mr

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def test_grid_round_trip_keeps_a_linear_field():
    """An LPS 1 mm volume onto a RAS 2 × 2 × 3 mm prior grid and back: trilinear resampling is exact for a linear field."""
    aff = np.diag([-1.0, -1.0, 1.0, 1.0])
    aff[:3, 3] = [20.0, 30.0, -5.0]
    shape = (24, 40, 36)
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij")
    ras = np.tensordot(aff[:3, :3], np.stack([i, j, k]), axes=1) + aff[:3, 3, None, None, None]
    field = (0.3 * ras[0] - 0.2 * ras[1] + 0.5 * ras[2]).astype(np.float32)
    grid = prior_grid(shape, aff, ["R", "A", "S"], (2.0, 2.0, 3.0))
    assert grid.shape == (8, 20, 18) and np.allclose(np.diag(grid.affine)[:3], [2.0, 2.0, 3.0])
    on = resample(field, aff, grid, 0.0)
    back = resample(on, grid.affine, Grid(shape, aff), 0.0)
    inner = (slice(4, -4), slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(back[inner], field[inner], atol=1e-3)
    same = prior_grid(shape, np.diag([2.0, 2.0, 3.0, 1.0]), ["R", "A", "S"], (2.0, 2.0, 3.0))
    assert same.shape == shape and np.array_equal(same.affine, np.diag([2.0, 2.0, 3.0, 1.0]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A regression prior and a DDPM prior trained on the generated head (subject folder), slices 3-4 held out."""
    tmp = tmp_path_factory.mktemp("mr2ct")
    folder = make_subject(tmp)
    data = f"data:\n  paths: [{folder}]\n  intensity: sct\n  min_fraction: 0\n  condition:\n    guide: true\n    neighbours: 1\n"
    data += f"  holdout:\n    - path: {folder}\n      slices: [3, 4]\n"
    assert main(["train", "--config", str(sct_config(tmp, data, "regression", 300, "l1")), "--quiet"]) == 0
    cfg = sct_config(tmp, data, "ddpm", 3, "ddpm")
    cfg.write_text(cfg.read_text().replace("objective: ddpm", "objective: ddpm\n  prediction: v"))
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    return tmp, folder


def test_v_prediction_is_recorded_and_only_for_ddpm(trained, tmp_path, capsys):
    tmp, folder = trained
    d = load_prior(tmp / "ddpm")
    assert d.info["prediction"] == "v" and d.prediction == "v"
    cfg = tmp / "ddpm.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("objective: ddpm", "objective: score").replace(str(tmp / "ddpm"), str(tmp_path / "o")))
    assert main(["train", "--config", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{bad}: train.prediction: expected 'epsilon' for objective 'score' ('v' is for 'ddpm' only), got 'v'"), err


def test_regression_baseline_learns_the_head(trained):
    tmp, folder = trained
    d = load_prior(tmp / "l1")
    assert d.info["objective"] == "regression" and d.info["schedule"] == {}
    mr = read_mr(folder / "mr.nii.gz")
    out = translate_mr(mr, d, TranslateConfig())
    ct = head()[0]
    m = sct_metrics(ct[3:5], out.hu[3:5])  # the held-out slices
    assert out.std is None and m["MAE_body_HU"] < 120 and m["Dice_bone"] > 0.6, m
    tiled = translate_mr(mr, d, TranslateConfig(tile=16)).hu  # the network on 16² windows of each slice
    assert tiled.shape == out.hu.shape and sct_metrics(ct[3:5], tiled[3:5])["MAE_body_HU"] < 1.5 * m["MAE_body_HU"]
    assert not np.array_equal(tiled, out.hu)


def test_translate_cli_nifti_and_dicom_in_the_mr_study(trained, tmp_path, capsys):
    import pydicom
    from pydicom.dataset import Dataset

    from medrecon.datasets.dicom_series import write_derived_series

    tmp, folder = trained
    ref = Dataset()
    ref.PatientID, ref.PatientName, ref.StudyInstanceUID = "P-17", "Doe^Jane", "1.2.3.4.5"
    mr = head()[1][:4] * 900
    series = write_derived_series(
        np.round(mr).astype(np.int16),
        AFFINE,
        tmp_path / "mr_series",
        modality="MR",
        sop_class_uid=MR_IMAGE_STORAGE,
        image_type=("ORIGINAL", "PRIMARY"),
        description="T1",
        reference_headers=[ref],
    )
    args = ["translate", "mr2ct", "--input", series, "--prior", tmp / "ddpm", "--steps", "3", "--mirror", "--samples", "2", "--quiet"]
    assert main([str(a) for a in args + ["--out", tmp_path / "sct.nii.gz"]]) == 0
    assert main([str(a) for a in args + ["--out", tmp_path / "sct"]]) == 0
    nii = read_ct(tmp_path / "sct.nii.gz")
    dcm = read_ct(tmp_path / "sct")
    assert (tmp_path / "sct_std.nii.gz").exists() and (tmp_path / "sct_std").is_dir()
    np.testing.assert_allclose(dcm.hu, np.round(nii.hu), atol=0.51)  # same seed, HU rounded in DICOM
    np.testing.assert_allclose(dcm.affine, nii.affine, atol=1e-4)
    h = pydicom.dcmread(sorted((tmp_path / "sct").iterdir())[0])
    src = pydicom.dcmread(sorted(series.iterdir())[0])
    assert (h.Modality, h.PatientID, str(h.PatientName), h.StudyInstanceUID) == ("CT", "P-17", "Doe^Jane", "1.2.3.4.5")
    assert h.SeriesInstanceUID != src.SeriesInstanceUID and h.RescaleIntercept == -1024 and h.RescaleType == "HU"
    assert h.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert h.SeriesDescription == "medrecon sCT from MR (ddim, 2 x 3 steps, mirror views)"  # what made it
    assert float(h.SliceThickness) == pytest.approx(3.0)
    three = [str(a) for a in args[:-2]] + ["3", "--quiet"]  # 3 samples: their median is not their mean
    for summary in ("mean", "median"):
        assert main(three + ["--summary", summary, "--out", str(tmp_path / f"{summary}.nii.gz")]) == 0
    assert not np.allclose(read_ct(tmp_path / "mean.nii.gz").hu, read_ct(tmp_path / "median.nii.gz").hu)
    assert main(three + ["--no-mirror", "--out", str(tmp_path / "plain.nii.gz")]) == 0  # sample 1 no longer mirrored
    assert not np.allclose(read_ct(tmp_path / "mean.nii.gz").hu, read_ct(tmp_path / "plain.nii.gz").hu)
    unasked = [a for a in three if a != "--mirror"]  # this prior recommends no mirror views: off by default
    assert main(unasked + ["--out", str(tmp_path / "default.nii.gz")]) == 0
    np.testing.assert_array_equal(read_ct(tmp_path / "default.nii.gz").hu, read_ct(tmp_path / "plain.nii.gz").hu)
    assert main(three + ["--no-mirror", "--out", str(tmp_path / "plain")]) == 0
    assert pydicom.dcmread(sorted((tmp_path / "plain").iterdir())[0]).SeriesDescription == "medrecon sCT from MR (ddim, 3 x 3 steps)"


def test_ve_samplers_translate_with_a_ddpm_prior(trained, tmp_path):
    """The probability-flow ODE runs on the DDPM prior over its own noise levels (deterministic: same seed, same sCT)."""
    tmp, folder = trained
    out = tmp_path / "ode.nii.gz"
    args = ["translate", "mr2ct", "--input", str(folder / "mr.nii.gz"), "--prior", str(tmp / "ddpm"), "--sampler", "ve_ode"]
    assert main(args + ["--steps", "3", "--out", str(out)]) == 0
    hu = read_ct(out).hu
    assert np.isfinite(hu).all() and hu.std() > 0
    assert main(args + ["--steps", "3", "--out", str(tmp_path / "again.nii.gz")]) == 0
    assert np.array_equal(read_ct(tmp_path / "again.nii.gz").hu, hu)


def test_translate_refusals(trained, tmp_path, capsys):
    tmp, folder = trained
    mr = folder / "mr.nii.gz"
    assert_refused(["translate", "mr2ct", "--input", mr, "--out", tmp_path / "o.nii.gz"], capsys, "--prior: needed", tmp_path)
    assert_refused(
        ["translate", "mr2ct", "--input", mr, "--prior", tmp / "l1", "--method", "bulk", "--out", tmp_path / "o.nii.gz"],
        capsys,
        "not used by --method bulk",
        tmp_path,
    )
    assert_refused(
        ["translate", "mr2ct", "--input", folder / "ct.nii.gz", "--prior", tmp / "ddpm", "--out", folder / "ct.nii.gz"],
        capsys,
        "input",
        tmp_path,
    )


def test_pet2ct_on_the_same_machinery(trained, tmp_path, capsys):
    rng = np.random.default_rng(1)
    ct = np.clip(rng.uniform(0.3, 0.6, (3, 40, 40)), 0, 1).astype(np.float32)
    ct[:, :6] = 0.0  # air
    np.savez(tmp_path / "pairs.npz", pet_nac=rng.uniform(0.1, 1, (3, 20, 20)).astype(np.float32), ct=ct)
    data = f"data:\n  paths: [{tmp_path / 'pairs.npz'}]\n  intensity: sct\n  min_fraction: 0\n  condition:\n    guide: true\n"
    assert main(["train", "--config", str(sct_config(tmp_path, data, "ddpm", 2, "pet2ct")), "--quiet"]) == 0
    args = ["translate", "pet2ct", "--input", tmp_path / "pairs.npz", "--steps", "2", "--quiet"]
    assert main([str(a) for a in args + ["--prior", tmp_path / "pet2ct", "--out", tmp_path / "sct.nii.gz"]]) == 0
    out = read_ct(tmp_path / "sct.nii.gz")
    assert out.hu.shape == (3, 20, 20) and np.all(np.isfinite(out.hu))
    capsys.readouterr()
    assert_refused(args + ["--prior", trained[0] / "ddpm", "--out", tmp_path / "o.nii.gz"], capsys, "conditioned on PET", tmp_path)


def test_3d_patch_prior_trains_on_blocks_outside_the_slab_and_translates_in_tiles(tmp_path):
    from medrecon.datasets.sct_training import load_sct_training_blocks

    ct, mr = head(slices=20, size=24)
    write_nifti(ct, tmp_path / "ct.nii.gz")
    write_nifti(mr * 900, tmp_path / "mr.nii.gz")
    blocks = load_sct_training_blocks([tmp_path / "ct.nii.gz"], [tmp_path / "mr.nii.gz"], {str(tmp_path / "ct.nii.gz"): (8, 11)}, depth=8)
    # runs 0-7 and 12-19: one block each, none crossing the slab
    assert blocks.images.shape == (2, 8, 24, 24) and blocks.conds.shape == (2, 1, 8, 24, 24)
    np.testing.assert_allclose(blocks.images[1], ct[12:20] / 1000, rtol=1e-6)
    data = (
        f"data:\n  paths: [{tmp_path / 'ct.nii.gz'}]\n  intensity: sct\n  condition:\n    paths: [{tmp_path / 'mr.nii.gz'}]\n"
        f"  holdout:\n    - path: {tmp_path / 'ct.nii.gz'}\n      slices: [8, 11]\n"
    )
    cfg = sct_config(tmp_path, data, "ddpm", 2, "p3d")
    cfg.write_text(
        cfg.read_text().replace("crop: 16", "crop: 8").replace("norm_num_groups: 8\n", "norm_num_groups: 8\n  spatial_dims: 3\n")
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    d = load_prior(tmp_path / "p3d")
    assert d.net.spatial_dims == 3 and d.info["condition"]["patch"] == 8
    out = translate_mr(read_mr(tmp_path / "mr.nii.gz"), d, TranslateConfig(steps=2, samples=2, tile=16))
    assert out.hu.shape == (20, 24, 24) and out.std.shape == (20, 24, 24) and np.all(np.isfinite(out.hu))
    # a warm start from the prior's first estimate (without it the engine refuses start < 1)
    warm = translate_mr(read_mr(tmp_path / "mr.nii.gz"), d, TranslateConfig(steps=1, samples=2, tile=16, start=0.5))
    assert warm.hu.shape == out.hu.shape and np.all(np.isfinite(warm.hu))


def test_summary_of_samples_is_numpys_mean_or_median():
    import torch

    from medrecon.tasks.mr2ct.translate import summarise_samples

    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 4, 7):
        s = 800 * torch.randn((2, n, 5, 6), generator=g)
        s[0, :, 0, 0] = 5000.0  # above the CT range: clipped after summarising
        mean, std = summarise_samples(s, "mean")
        median, _ = summarise_samples(s, "median")
        lo, hi = -1024.0, 3071.0
        assert np.allclose(mean.numpy(), np.clip(s.numpy().mean(axis=1), lo, hi), atol=1e-3)
        assert np.allclose(median.numpy(), np.clip(np.median(s.numpy(), axis=1), lo, hi), atol=1e-3)
        assert (std is None) == (n == 1) and (std is None or np.allclose(std.numpy(), s.numpy().std(axis=1, ddof=1), atol=1e-2))


def test_mirror_views_average_the_regressions_two_predictions(trained):
    tmp, _ = trained
    d = load_prior(tmp / "l1")
    cond = torch.rand(3, d.net.cond_channels, 24, 20, generator=torch.Generator().manual_seed(0))
    dim = mirror_dim(d.info["axcodes"])

    def predict(c, mirror):
        return torch.cat(list(sample_slices(c, d, TranslateConfig(tile=None, mirror=mirror))))[:, 0]

    off, on = predict(cond, False), predict(cond, True)
    mirrored = predict(cond.flip(dim), False).flip(dim)
    assert not torch.allclose(off, mirrored, atol=1.0)  # the network is not mirror-symmetric
    torch.testing.assert_close(on, (off + mirrored) / 2, atol=1e-3, rtol=1e-5)


def test_a_warm_start_refines_the_priors_own_first_estimate(trained):
    """``start < 1``: every sample of a slice starts from the mean of the one-evaluation estimates
    (the chain's first x̂₀), diffused to that level; from one step above the clean end it stays near it."""
    tmp, _ = trained
    d = load_prior(tmp / "ddpm")
    cond = torch.rand(2, d.net.cond_channels, 24, 20, generator=torch.Generator().manual_seed(1))

    def run(**kw):
        return torch.cat(list(sample_slices(cond, d, TranslateConfig(tile=None, samples=3, **kw))))

    first = run(steps=1).mean(dim=1, keepdim=True)
    refined = run(steps=1, start=0.001)  # one evaluation at t = 1
    other_seed = run(steps=1, seed=5).mean(dim=1, keepdim=True)
    near, far = (refined - first).abs().mean(), (other_seed - first).abs().mean()
    assert near < 20.0 < far, (near, far)  # HU, mean over voxels
    assert refined.std(dim=1).max() > 0  # each sample's own noise
