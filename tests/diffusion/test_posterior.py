"""The modality-free posterior engine: pinned to the primitives it composes, and usable without physics."""

import pytest
import torch

from medrecon.diffusion.consistency import DataConsistency, ProximalCG, SupportRestricted
from medrecon.diffusion.denoiser import Denoiser
from medrecon.diffusion.posterior import PosteriorSettings, sample_posterior
from medrecon.diffusion.sampling import DDIMSampler, sample
from medrecon.diffusion.schedule import VESchedule, VPSchedule
from medrecon.errors import ArgumentError
from medrecon.physics.mri import SenseOperator


class ShrinkPrior(Denoiser):
    """D(x, σ) = s²/(s²+σ²) x (the posterior mean of a Gaussian prior); a condition, if given, is added."""

    def __init__(self, complex_data=True, schedule=VPSchedule()):
        super().__init__()
        self.complex_data, self.schedule = complex_data, schedule

    def forward(self, x, sigma, cond=None):
        out = (1.0 / (1.0 + sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2)) * x
        return out if cond is None else out + cond[:, 0]


def _problem(s=2, h=12, w=10, coils=3):
    g = torch.Generator().manual_seed(0)
    maps = torch.complex(torch.randn(s, coils, h, w, generator=g), torch.randn(s, coils, h, w, generator=g))
    maps[..., :2] = 0  # unobserved columns
    mask = torch.zeros(1, 1, 1, w)
    mask[..., ::2] = 1
    op = SenseOperator(maps, mask)
    x = torch.complex(torch.randn(s, h, w, generator=g), torch.randn(s, h, w, generator=g))
    return op, op(x), maps


def test_engine_equals_the_primitives_it_composes():
    op, y, maps = _problem()
    settings = PosteriorSettings(sampler="dds", steps=6, eta=0.85, dc="cg", dc_iters=3, samples=3, start=1.0)
    support = maps.abs().amax(dim=1) > 0
    post = sample_posterior(ShrinkPrior(), settings, (2, 12, 10), torch.Generator().manual_seed(5), operator=op, y=y, support=support)
    # by hand: operator on repeated buffers, proximal CG, support, the one sample() loop, a final CG step
    n = 3
    big = SenseOperator(maps.repeat_interleave(n, 0), op.mask)
    dc = SupportRestricted(ProximalCG(big, y.repeat_interleave(n, 0), iters=3), support.repeat_interleave(n, 0))
    x = sample(ShrinkPrior(), (6, 12, 10), DDIMSampler(VPSchedule(), 6, 0.85), torch.Generator().manual_seed(5), dc=dc)
    x = dc(x, 0.0).reshape(2, n, 12, 10)
    assert post.samples.shape == (2, 3, 12, 10)
    assert torch.allclose(post.samples, x, atol=1e-5)
    assert torch.allclose(post.mean, x.mean(1), atol=1e-5) and torch.allclose(post.std, x.abs().std(1), atol=1e-5)
    assert float(post.mean[..., :2].abs().max()) == 0.0  # nothing outside the support


def test_without_an_operator_with_a_condition_and_a_task_likelihood():
    cond = torch.full((2, 1, 8, 8), 0.5)
    settings = PosteriorSettings(sampler="ddim", eta=0.0, steps=5, dc="none", samples=2)
    post = sample_posterior(ShrinkPrior(complex_data=False), settings, (2, 8, 8), torch.Generator().manual_seed(0), cond=cond)
    assert post.mean.shape == (2, 8, 8) and not post.mean.is_complex()

    class Constant(DataConsistency):  # a likelihood step the task supplies
        def forward(self, x0, sigma):
            return torch.full_like(x0, 0.25)

    lk = PosteriorSettings(sampler="ddim", steps=4, dc="likelihood", samples=2)
    post = sample_posterior(ShrinkPrior(complex_data=False), lk, (2, 8, 8), torch.Generator().manual_seed(0), likelihood=Constant())
    assert torch.allclose(post.mean, torch.full((2, 8, 8), 0.25))


def test_engine_refuses_what_does_not_fit():
    op, y, _ = _problem()
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ArgumentError, match="needs a forward operator"):
        sample_posterior(ShrinkPrior(), PosteriorSettings(steps=2), (2, 12, 10), g)
    with pytest.raises(ArgumentError, match="warm start needs an initial estimate"):
        sample_posterior(ShrinkPrior(), PosteriorSettings(steps=2, start=0.5), (2, 12, 10), g, operator=op, y=y)
    with pytest.raises(ArgumentError, match="early end of the chain needs a DDPM sampler"):
        sample_posterior(ShrinkPrior(), PosteriorSettings(sampler="ve_pc", dc="none", end=0.1), (2, 12, 10), g)
    with pytest.raises(ArgumentError, match="needs a DDPM prior"):
        sample_posterior(ShrinkPrior(schedule=VESchedule()), PosteriorSettings(sampler="ddim", dc="none"), (2, 12, 10), g)
    with pytest.raises(ArgumentError, match="supplies no likelihood"):
        sample_posterior(ShrinkPrior(), PosteriorSettings(sampler="ddim", dc="likelihood"), (2, 12, 10), g)


def test_ve_samplers_run_on_a_ddpm_prior_inside_its_trained_band():
    """ve_* samplers on a DDPM prior span its noise levels; a prior trained on part of its schedule refuses them."""
    from medrecon.diffusion.posterior import make_sampler

    settings = PosteriorSettings(sampler="ve_ode", steps=6, dc="none", samples=2)
    sampler = make_sampler(ShrinkPrior(complex_data=False), settings)
    assert sampler.sigmas[0] == pytest.approx(float(VPSchedule().sigmas()[-1]))
    post = sample_posterior(ShrinkPrior(complex_data=False), settings, (2, 12, 10), torch.Generator().manual_seed(0))
    assert post.samples.shape == (2, 2, 12, 10) and torch.isfinite(post.mean).all()
    banded = ShrinkPrior(complex_data=False)
    banded.info = {"train_config": {"timestep_range": [12, 240]}}
    with pytest.raises(ArgumentError, match="trained on timesteps 12-240 only"):
        sample_posterior(banded, settings, (2, 12, 10), torch.Generator().manual_seed(0))


def test_one_sample_keeps_operator_data_and_condition():
    """samples=1 must pass measurements, warm start and condition through unchanged (not drop them)."""
    op, y, maps = _problem()
    settings = PosteriorSettings(sampler="dds", steps=4, dc="cg", dc_iters=2, samples=1, start=0.5)
    x_start = op.adjoint(y)
    post = sample_posterior(ShrinkPrior(), settings, (2, 12, 10), torch.Generator().manual_seed(1), operator=op, y=y, x_start=x_start)
    assert post.samples.shape == (2, 1, 12, 10) and float(post.std.abs().max()) == 0.0
    # the final CG step on the data moved the estimate towards y
    assert float(torch.linalg.vector_norm(op(post.mean) - y)) < float(torch.linalg.vector_norm(op(torch.zeros_like(post.mean)) - y))
    cond = torch.full((2, 1, 8, 8), 0.5)
    one = PosteriorSettings(sampler="ddim", eta=0.0, steps=3, dc="none", samples=1)
    with_cond = sample_posterior(ShrinkPrior(complex_data=False), one, (2, 8, 8), torch.Generator().manual_seed(0), cond=cond)
    without = sample_posterior(ShrinkPrior(complex_data=False), one, (2, 8, 8), torch.Generator().manual_seed(0))
    assert float((with_cond.mean - without.mean).mean()) > 0.2  # the condition reached the network
