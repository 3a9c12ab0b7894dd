"""Mirror views: every other posterior sample seen mirrored, pinned to explicit NumPy flips."""

import numpy as np
import pytest
import torch

from medrecon.diffusion.denoiser import Denoiser
from medrecon.diffusion.mirror_views import MirroredDenoiser, mirror_dim
from medrecon.diffusion.posterior import PosteriorSettings, sample_posterior
from medrecon.diffusion.schedule import VPSchedule


class LopsidedPrior(Denoiser):
    """D(x, σ, c) = x / (1 + σ²) + cumsum of c[:, 0] along columns + 0.1 · row index: no mirror symmetry."""

    def __init__(self):
        super().__init__()
        self.complex_data, self.schedule = False, VPSchedule()

    def forward(self, x, sigma, cond=None):
        rows = torch.arange(x.shape[-2], dtype=x.dtype)[:, None]
        return x / (1 + sigma.view(-1, 1, 1) ** 2) + cond[:, 0].cumsum(-1) + 0.1 * rows


@pytest.mark.parametrize("dim", [-1, -2])
def test_odd_samples_see_the_mirrored_image_and_condition(dim):
    g = torch.Generator().manual_seed(0)
    items, samples = 3, 4
    x = torch.randn(items * samples, 6, 5, generator=g)
    cond = torch.randn(items * samples, 2, 6, 5, generator=g)
    sigma = torch.rand(items * samples, generator=g) * 3
    base = LopsidedPrior()
    out = MirroredDenoiser(base, samples, dim)(x, sigma, cond).numpy()
    xn, cn, sn = x.numpy(), cond.numpy(), sigma.numpy()
    for b in range(items * samples):
        ref = lambda xi, ci: xi / (1 + sn[b] ** 2) + np.cumsum(ci[0], axis=-1) + 0.1 * np.arange(6)[:, None]  # noqa: E731
        if b % samples % 2:
            want = np.flip(ref(np.flip(xn[b], dim), np.flip(cn[b], dim)), dim)
        else:
            want = ref(xn[b], cn[b])
        np.testing.assert_allclose(out[b], want, rtol=1e-6, atol=1e-6)


def test_mirror_axis_follows_the_priors_axcodes():
    assert mirror_dim(["R", "A", "S"]) == -1 and mirror_dim(["L", "P", "S"]) == -1
    assert mirror_dim(["A", "R", "S"]) == -2
    assert mirror_dim(["A", "S", "R"]) is None  # sagittal slices: no in-plane left-right axis
    with pytest.raises(ValueError, match="dim"):
        MirroredDenoiser(LopsidedPrior(), 2, 0)


def test_posterior_samples_alternate_views_and_one_sample_is_untouched():
    settings = PosteriorSettings(sampler="ddim", steps=4, dc="none", samples=2, seed=0)
    cond = torch.randn(2, 1, 6, 5, generator=torch.Generator().manual_seed(1))
    base = LopsidedPrior()
    mirrored = sample_posterior(MirroredDenoiser(base, 2, -1), settings, (2, 6, 5), torch.Generator().manual_seed(0), cond=cond)
    plain = sample_posterior(base, settings, (2, 6, 5), torch.Generator().manual_seed(0), cond=cond)
    torch.testing.assert_close(mirrored.samples[:, 0], plain.samples[:, 0])  # sample 0: the plain view
    assert not torch.allclose(mirrored.samples[:, 1], plain.samples[:, 1])
    one = PosteriorSettings(sampler="ddim", steps=4, dc="none", samples=1, seed=0)
    torch.testing.assert_close(
        sample_posterior(MirroredDenoiser(base, 1, -1), one, (2, 6, 5), torch.Generator().manual_seed(0), cond=cond).samples,
        sample_posterior(base, one, (2, 6, 5), torch.Generator().manual_seed(0), cond=cond).samples,
    )
