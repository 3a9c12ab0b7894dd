"""A DDPM prior trained on a band of timesteps only (``TrainConfig.timestep_range``): training draws
inside the band, the prior records it, and every use outside it is refused before the network runs."""

import json

import pytest
import torch

from medrecon.diffusion.posterior import PosteriorSettings, sample_posterior
from medrecon.diffusion.prior_folder import load_prior
from medrecon.diffusion.training import TrainConfig, _loss, train_prior
from medrecon.errors import ArgumentError, InputFileError

TINY = dict(channels=(16, 16), attention_levels=(False, False), num_res_blocks=1, num_head_channels=16, norm_num_groups=8)


class TimestepSpy(torch.nn.Module):
    """Stands in for the network: records the timesteps it is called with, predicts zero."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, x, t, cond=None):
        self.seen.append(t.detach().clone())
        return torch.zeros_like(x)


@pytest.mark.parametrize("band", [None, (10, 20)])
def test_training_draws_timesteps_in_the_band_only(band):
    cfg = TrainConfig(objective="ddpm", timestep_range=band, num_train_timesteps=100)
    spy, g = TimestepSpy(), torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 8, 8)
    for _ in range(10):
        _loss(spy, cfg, x0, None, g)
    t = torch.cat(spy.seen)
    lo, hi = band or (0, 99)
    assert int(t.min()) == lo and int(t.max()) == hi  # both ends drawn, nothing outside


def test_band_only_for_ddpm_and_inside_the_schedule():
    with pytest.raises(ValueError, match="timestep_range: expected none for objective 'score'"):
        TrainConfig(objective="score", timestep_range=(10, 20))
    for bad in ((20, 10), (5, 5), (-1, 10), (10, 1000)):
        with pytest.raises(ValueError, match="timestep_range: expected 0 <= lo < hi"):
            TrainConfig(timestep_range=bad)


def test_a_band_prior_refuses_noise_levels_it_never_saw(tmp_path):
    imgs = torch.rand(8, 16, 16)
    cfg = TrainConfig(objective="ddpm", steps=2, batch_size=2, crop=12, seed=0, timestep_range=(100, 300))
    train_prior(imgs, cfg, tmp_path / "p", TINY)
    info = json.loads((tmp_path / "p" / "prior.json").read_text())
    assert info["train_config"]["timestep_range"] == [100, 300]
    d = load_prior(tmp_path / "p")
    assert d.timestep_range == (100, 300)
    sig = d.schedule.sigmas()
    x = torch.rand(2, 16, 16)
    assert d(x, sig[200].float()).shape == x.shape  # inside the band
    with pytest.raises(ArgumentError, match=r"trained on timesteps 100-300 only .* got timesteps 20-20"):
        d(x, sig[20].float())
    # a chain that leaves the band is refused before its first network evaluation
    calls = []
    d.net.register_forward_hook(lambda *a: calls.append(1))
    with pytest.raises(ArgumentError, match=r"start / end \(1 / 0\): .*got timesteps 0-999"):
        sample_posterior(d, PosteriorSettings(sampler="ddim", steps=4, dc="none"), (1, 16, 16), torch.Generator().manual_seed(0))
    assert not calls
    warm = PosteriorSettings(sampler="ddim", steps=3, dc="none", start=280 / 999, end=120 / 999)
    post = sample_posterior(d, warm, (1, 16, 16), torch.Generator().manual_seed(0), x_start=x[:1])
    assert len(calls) == 3 and torch.isfinite(post.mean).all()


def test_a_band_that_does_not_fit_the_schedule_is_a_bad_prior_file(tmp_path):
    imgs = torch.rand(8, 16, 16)
    train_prior(imgs, TrainConfig(objective="ddpm", steps=1, batch_size=2, crop=12, timestep_range=(100, 300)), tmp_path, TINY)
    info = json.loads((tmp_path / "prior.json").read_text())
    for bad in ([300, 5000], [100, 200, 300], "ab"):
        info["train_config"]["timestep_range"] = bad
        (tmp_path / "prior.json").write_text(json.dumps(info))
        with pytest.raises(InputFileError, match=r"prior.json: train_config.timestep_range: expected two timesteps"):
            load_prior(tmp_path)
