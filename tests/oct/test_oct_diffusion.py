"""OCT diffusion: the noisy-data denoiser (Tweedie, exact on a Gaussian model), early-ending chains,
the intensity transform, training on noisy B-scans from a config and ``denoise oct --prior`` end to end."""

import json

import numpy as np
import pytest
import tifffile
import torch
from conftest import assert_refused
from oct_synthetic import clean_retina, speckled

from medrecon.cli.main import main
from medrecon.datasets.oct_training import from_prior_scale, load_oct_training_bscans, oct_full_scale, to_prior_scale
from medrecon.diffusion.denoiser import Denoiser
from medrecon.diffusion.noisy_data import NoisyDataDenoiser
from medrecon.diffusion.schedule import VPSchedule
from medrecon.diffusion.train_config import DataConfig
from medrecon.tasks.oct.config import OCTDiffusionConfig
from medrecon.tasks.oct.noise import estimate_noise_sigmas, training_timestep_range


class GaussianNoisyPrior(Denoiser):
    """The exact denoiser of noisy data ``y = x + n``, ``x ~ N(0, a²)``, ``n ~ N(0, s²)`` per pixel."""

    complex_data = False

    def __init__(self, a: float, s: float) -> None:
        super().__init__()
        self.a2, self.s2 = a * a, s * s

    def forward(self, x, sigma, cond=None):
        sig = self._check(x, sigma).reshape(-1, 1, 1).double()
        return ((self.a2 + self.s2) / (self.a2 + self.s2 + sig**2) * x.double()).float()


def test_noisy_data_denoiser_is_the_clean_posterior_mean():
    a, s = 0.7, 0.2
    clean = NoisyDataDenoiser(GaussianNoisyPrior(a, s), torch.tensor([s, s]))
    v = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    for tau in (0.25, 0.4, 1.5):
        expected = a * a / (a * a + tau * tau) * v  # E[x | x + N(0, τ²) = v]
        assert torch.allclose(clean(v, torch.full((2,), tau)), expected, atol=1e-5)
    with pytest.raises(ValueError, match="one per batch item"):
        clean(torch.zeros(3, 4, 5), torch.full((3,), 0.5))


def test_chain_can_end_above_the_clean_end():
    sched = VPSchedule()
    pairs = sched.inference_timesteps(4, start=0.3, end=0.1)
    assert pairs[0][0] == round(0.3 * 999) and pairs[-1] == (round(0.1 * 999), -1)
    assert [p[1] for p in pairs[:-1]] == [p[0] for p in pairs[1:]]
    assert sched.inference_timesteps(1, 0.2, 0.2) == [(round(0.2 * 999), -1)]
    assert sched.inference_timesteps(5, 1.0) == sched.inference_timesteps(5, 1.0, 0.0)  # unchanged default
    with pytest.raises(ValueError, match="end"):
        sched.inference_timesteps(2, 0.1, 0.3)
    with pytest.raises(ValueError, match="steps"):
        sched.inference_timesteps(500, 0.3, 0.1)


def test_intensity_transforms_round_trip():
    v = np.array([[0.0, 10.0, 255.0]])
    for t in ("linear", "log"):
        x = to_prior_scale(v, t, 255.0)
        assert x.max() == pytest.approx(1.0) and x.min() == 0.0
        assert np.allclose(from_prior_scale(x, t, 255.0), v, atol=1e-3)
    assert oct_full_scale(np.uint16, v) == 65535.0 and oct_full_scale(np.float32, v) == 255.0
    with pytest.raises(ValueError, match="transform"):
        DataConfig(paths=["a.tif"], transform="log")
    with pytest.raises(ValueError, match="end_level"):
        OCTDiffusionConfig(start_level=2, end_level=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny OCT prior trained for 20 steps on synthetic noisy B-scans, from a config (log transform)."""
    root = tmp_path_factory.mktemp("octprior")
    clean = clean_retina()
    data = root / "train"
    data.mkdir()
    for k in range(3):
        tifffile.imwrite(data / f"scan{k}.tif", speckled(clean, seed=10 + k), photometric="minisblack")
    cfg = root / "oct.yaml"
    cfg.write_text(
        f"data:\n  paths: [{data}]\n  intensity: oct\n  transform: log\n"
        "prior:\n  channels: [16, 16]\n  attention_levels: [false, false]\n  num_head_channels: 16\n  norm_num_groups: 8\n"
        f"train:\n  steps: 20\n  batch_size: 2\n  crop: 32\n  checkpoint_every: 10\noutput: {root / 'prior'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    test = root / "case_test.tif"
    tifffile.imwrite(test, speckled(clean, seed=99), photometric="minisblack")
    return root / "prior", test


def test_prior_records_the_transform(trained):
    prior, _ = trained
    info = json.loads((prior / "prior.json").read_text())
    assert info["modality"] == "OCT"
    assert info["oct"]["transform"] == "log" and info["oct"]["full_scale"] == 255.0 and info["oct"]["stored_dtype"] == "uint8"
    assert "3 noisy OCT B-scans" in info["data"]
    # trained on the timesteps of the noise levels denoising uses: 0.5 to 8 times the B-scans' σ̂
    bscans = load_oct_training_bscans([str(prior.parent / "train")], "log").images
    band = training_timestep_range(estimate_noise_sigmas(bscans), VPSchedule(1000))
    assert info["train_config"]["timestep_range"] == list(band) and 0 < band[0] < band[1] < 999


def test_denoise_with_prior_writes_mean_and_std(trained, tmp_path, capsys):
    prior, test = trained
    out = tmp_path / "dn.tif"
    argv = ["denoise", "oct", str(test), "--prior", str(prior), "--samples", "2", "--steps", "2", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0  # --prior alone selects the diffusion method
    text = capsys.readouterr().out
    assert "diffusion, mean of 2" in text and "dn_std.tif" in text
    mean, std = tifffile.imread(out), tifffile.imread(tmp_path / "dn_std.tif")
    noisy = tifffile.imread(test)
    assert mean.dtype == np.uint8 and mean.shape == noisy.shape and std.shape == noisy.shape
    assert std.max() > 0 and not np.array_equal(mean, noisy)
    assert main([*argv, "--out", str(tmp_path / "again.tif")]) == 0  # the seed makes it reproducible
    assert np.array_equal(tifffile.imread(tmp_path / "again.tif"), mean)


def test_denoise_with_prior_bad_input(trained, tmp_path, capsys):
    prior, test = trained
    out = str(tmp_path / "o.tif")
    assert_refused(
        ["denoise", "oct", str(test), "--prior", str(prior), "--set", "transform=linear", "--out", out], capsys, "'log'", tmp_path
    )
    wide = tmp_path / "wide.tif"
    tifffile.imwrite(wide, tifffile.imread(test).astype(np.uint16) * 200, photometric="minisblack")
    assert_refused(["denoise", "oct", str(wide), "--prior", str(prior), "--out", out], capsys, "uint8 B-scans like the prior", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--method", "bm3d", "--prior", str(prior), "--out", out], capsys, "--prior", tmp_path)
    assert_refused(["denoise", "oct", str(test), "--method", "diffusion", "--out", out], capsys, "needs --prior", tmp_path)
    assert_refused(
        ["denoise", "oct", str(test), "--prior", str(prior), "--set", "end_level=0.5", "--out", out], capsys, "end_level", tmp_path
    )
    assert_refused(  # far above the band of noise levels the prior was trained on
        ["denoise", "oct", str(test), "--prior", str(prior), "--set", "start_level=40", "--out", out],
        capsys,
        "start_level / end_level: noise level: this prior was trained on timesteps",
        tmp_path,
    )
    other = tmp_path / "other_prior"
    other.mkdir()
    for f in ("prior.safetensors", "prior.json"):
        (other / f).write_bytes((prior / f).read_bytes())
    info = json.loads((other / "prior.json").read_text())
    info["normalisation"] = "per-image 99th percentile of magnitude = 1"
    (other / "prior.json").write_text(json.dumps(info))
    assert_refused(["denoise", "oct", str(test), "--prior", str(other), "--out", out], capsys, "expected an OCT prior", tmp_path)


def test_training_loader_refuses_mixed_types(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    tifffile.imwrite(a, speckled(clean_retina()), photometric="minisblack")
    tifffile.imwrite(b, speckled(clean_retina()).astype(np.uint16), photometric="minisblack")
    with pytest.raises(Exception, match="data type"):
        load_oct_training_bscans([str(a), str(b)])
    got = load_oct_training_bscans([str(a)], "linear")
    assert got.images.shape == (1, 112, 192) and got.images.max() <= 1.0 and got.info["oct"]["transform"] == "linear"


class PointwisePrior(Denoiser):
    """A denoiser that acts pixel by pixel (shrinks by the level, adds the condition): tiling must not change it."""

    complex_data = False

    def forward(self, x, sigma, cond=None):
        s = self._check(x, sigma).reshape(-1, 1, 1)
        return x / (1 + s**2) + (0 if cond is None else cond[:, 0])


def test_tiled_denoiser_matches_whole_image_for_a_pointwise_prior():
    from medrecon.diffusion.tiling import TiledDenoiser

    g = torch.Generator().manual_seed(1)
    x, c = torch.randn(3, 70, 101, generator=g), torch.randn(3, 1, 70, 101, generator=g)
    s = torch.tensor([0.1, 1.0, 2.0])  # a different level per item: each window must get its own item's
    tiled = TiledDenoiser(PointwisePrior(), tile=32, overlap=0.25, max_batch=5)
    assert torch.allclose(tiled(x, s), PointwisePrior()(x, s), atol=1e-5)
    assert torch.allclose(tiled(x, s, c), PointwisePrior()(x, s, c), atol=1e-5)
    small = torch.randn(2, 20, 30, generator=g)
    assert torch.equal(tiled(small, s[:2]), PointwisePrior()(small, s[:2]))


def test_denoise_with_prior_refuses_a_bscan_without_noise(trained, tmp_path, capsys):
    prior, _ = trained
    smooth = tmp_path / "smooth.tif"
    tifffile.imwrite(smooth, np.clip(np.rint(clean_retina()), 0, 255).astype(np.uint8), photometric="minisblack")
    assert_refused(["denoise", "oct", str(smooth), "--prior", str(prior), "--out", str(tmp_path / "o.tif")], capsys, "noise", tmp_path)


class RampPrior(Denoiser):
    """Not mirror-symmetric: multiplies each column by its index + 1 (so a mirrored call is told apart)."""

    complex_data = False

    def forward(self, x, sigma, cond=None):
        self._check(x, sigma)
        ramp = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype)
        return x * ramp + (0 if cond is None else cond.sum(1))


def test_mirrored_half_mirrors_every_other_item_and_back():
    from medrecon.tasks.oct.diffusion import MirroredHalf

    x = torch.rand(4, 3, 5, generator=torch.Generator().manual_seed(1))
    cond = torch.rand(4, 2, 3, 5, generator=torch.Generator().manual_seed(2))
    out = MirroredHalf(RampPrior())(x, torch.full((4,), 0.5), cond)
    ramp = torch.arange(1, 6, dtype=x.dtype)
    for b in range(4):
        expected = x[b] * (ramp.flip(0) if b % 2 else ramp) + cond[b].sum(0)  # mirror, ramp, mirror back
        torch.testing.assert_close(out[b], expected)
    # a mirror-symmetric prior (the Gaussian one) is unchanged by it
    g = GaussianNoisyPrior(0.7, 0.2)
    torch.testing.assert_close(MirroredHalf(g)(x, torch.full((4,), 0.5)), g(x, torch.full((4,), 0.5)))
