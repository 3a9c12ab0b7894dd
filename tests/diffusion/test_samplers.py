import math

import monai.networks.schedulers as schedulers
import pytest
import torch

from medrecon.diffusion.consistency import GradientGuidance, HardProjection, ProximalCG
from medrecon.diffusion.denoiser import Denoiser
from medrecon.diffusion.sampling import DDIMSampler, DDPMSampler, ProbabilityFlowSampler, VEPCSampler, sample
from medrecon.diffusion.schedule import VESchedule, VPSchedule
from medrecon.physics.fft import fftc, ifftc
from medrecon.physics.mri import SenseOperator
from medrecon.physics.mri.sense import FourierOperator, MaskOperator


class GaussianPrior(Denoiser):
    """Exact posterior mean of x₀ ~ N(0, s² I) per real channel: D(x, σ) = s²/(s²+σ²) x."""

    def __init__(self, s: float, complex_data: bool = False):
        super().__init__()
        self.s, self.complex_data = s, complex_data
        self.calls = 0

    def forward(self, x, sigma, cond=None):
        self.calls += 1
        s2 = self.s**2
        return (s2 / (s2 + sigma.reshape(-1, 1, 1) ** 2)) * x


def _x0_from_eps(x_t, eps, ab):
    return (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)


def test_schedule_matches_monai():
    sched = schedulers.DDPMScheduler(num_train_timesteps=1000)
    ours = VPSchedule()
    assert torch.allclose(ours.alphas_cumprod(), sched.alphas_cumprod)
    sig = ours.sigmas()
    t = ours.timestep_of_sigma(sig[[0, 10, 500, 999]].float())
    assert torch.allclose(t, torch.tensor([0.0, 10, 500, 999], dtype=torch.float64), atol=1e-3)
    ddim = schedulers.DDIMScheduler(num_train_timesteps=1000)
    ddim.set_timesteps(50)
    assert [t for t, _ in ours.inference_timesteps(50)] == ddim.timesteps.tolist()


@pytest.mark.parametrize("t", [999, 500, 37, 0])
def test_v_prediction_x0_identical_to_monai(t):
    """A v-prediction network's x̂₀ through the VE adapter equals MONAI's ``pred_original_sample``."""
    from medrecon.diffusion.denoiser import EpsilonDenoiser

    g = torch.Generator().manual_seed(5)
    x_t, v = torch.randn(2, 16, 12, generator=g), torch.randn(2, 16, 12, generator=g)

    class Fixed(torch.nn.Module):
        image_channels, spatial_dims = 1, 2

        def forward(self, x, timesteps, cond=None):
            return v.unsqueeze(1)

    sched = schedulers.DDPMScheduler(num_train_timesteps=1000, prediction_type="v_prediction", clip_sample=False)
    _, ref_x0 = sched.step(v.unsqueeze(1), t, x_t.unsqueeze(1), generator=torch.Generator().manual_seed(0))
    ab = float(sched.alphas_cumprod[t])
    sigma = math.sqrt((1 - ab) / ab)
    got = EpsilonDenoiser(Fixed(), VPSchedule(), prediction="v")(x_t / math.sqrt(ab), torch.tensor([sigma]))
    assert torch.allclose(got, ref_x0[:, 0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("t", [999, 500, 37, 1, 0])
def test_ddpm_step_identical_to_monai(t):
    sched = schedulers.DDPMScheduler(num_train_timesteps=1000, clip_sample=False)
    ours = DDPMSampler(VPSchedule())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 16, 12, generator=g)
    eps = torch.randn(2, 16, 12, generator=g)
    ref, ref_x0 = sched.step(eps.unsqueeze(1), t, x.unsqueeze(1), generator=torch.Generator().manual_seed(7))
    step = next(s for s in ours.steps() if s.t == t)
    x0 = _x0_from_eps(x, eps, float(sched.alphas_cumprod[t]))
    got = ours.update(x, x0, step, torch.Generator().manual_seed(7))
    assert torch.allclose(x0, ref_x0[:, 0], atol=1e-4)
    assert torch.allclose(got, ref[:, 0], rtol=1e-3, atol=1e-3)  # MONAI computes in float32, we in float64


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_identical_to_monai(eta):
    sched = schedulers.DDIMScheduler(num_train_timesteps=1000, clip_sample=False)
    sched.set_timesteps(20)
    ours = DDIMSampler(VPSchedule(), steps=20, eta=eta)
    g = torch.Generator().manual_seed(4)
    for step in ours.steps()[::6]:
        x = torch.randn(1, 8, 8, generator=g)
        eps = torch.randn(1, 8, 8, generator=g)
        ref, _ = sched.step(eps.unsqueeze(1), step.t, x.unsqueeze(1), eta=eta, generator=torch.Generator().manual_seed(5))
        x0 = _x0_from_eps(x, eps, float(sched.alphas_cumprod[step.t]))
        got = ours.update(x, x0, step, torch.Generator().manual_seed(5))
        assert torch.allclose(got, ref[:, 0], rtol=1e-3, atol=1e-3), step


@pytest.mark.parametrize(
    "sampler,tol",
    [
        (DDPMSampler(VPSchedule()), 0.05),
        (DDIMSampler(VPSchedule(), 200, eta=1.0), 0.08),
        (DDIMSampler(VPSchedule(), 200, eta=0.0), 0.05),
        (VEPCSampler(VESchedule(0.01, 20.0), 200, n_corrector=1), 0.06),
        (VEPCSampler(VESchedule(0.01, 20.0), 200, n_corrector=0), 0.06),
        (ProbabilityFlowSampler(VESchedule(0.01, 20.0), 100), 0.05),
        (VEPCSampler(VPSchedule().ve_span(), 200, n_corrector=1), 0.06),
        (VEPCSampler(VPSchedule().ve_span(), 200, n_corrector=0), 0.06),
        (ProbabilityFlowSampler(VPSchedule().ve_span(), 100), 0.05),
    ],
    ids=["ddpm1000", "ddim200-eta1", "ddim200-eta0", "ve-pc200", "ve-em200", "ve-ode100", "ve-pc200-vp", "ve-em200-vp", "ve-ode100-vp"],
)
def test_samplers_reproduce_a_gaussian_prior(sampler, tol):
    """With the exact denoiser of N(0, 0.5²), samples must have that spread (few-step samplers
    under-disperse by their discretisation error, which shrinks with more steps)."""
    prior = GaussianPrior(s=0.5)
    x = sample(prior, (4, 32, 32), sampler, torch.Generator().manual_seed(0))
    assert abs(float(x.std()) - 0.5) / 0.5 < tol
    assert abs(float(x.mean())) < 0.05
    assert prior.calls == len(sampler.steps())


def test_ve_span_covers_the_ddpm_noise_levels():
    """A DDPM prior's VE samplers run from its noisiest level σ_{T−1} (≈ 157) down to σ_0 (≈ 0.01)."""
    vp = VPSchedule()
    span = vp.ve_span()
    sig = vp.sigmas()
    assert span.sigma_max == pytest.approx(float(sig[-1])) and span.sigma_min == pytest.approx(float(sig[0]))
    assert 150 < span.sigma_max < 160 and 0.009 < span.sigma_min < 0.011


def test_probability_flow_ode_follows_the_closed_form():
    """For x₀ ~ N(0, s²) the VE probability-flow ODE scales x by √(s² + σ²): from σ_max to 0 the
    map is ``x · s / √(s² + σ_max²)`` exactly; Heun's error is second order in the step."""
    s, sched = 0.5, VESchedule(0.01, 20.0)
    errors = []
    for n in (10, 20, 40):
        sampler = ProbabilityFlowSampler(sched, n)
        prior = GaussianPrior(s)
        g = torch.Generator().manual_seed(0)
        x_top = sampler.init((2, 8, 8), False, torch.Generator().manual_seed(0), "cpu")
        out = sample(prior, (2, 8, 8), sampler, g)
        expected = x_top * s / math.sqrt(s**2 + sched.sigma_max**2)
        errors.append(float((out - expected).abs().max() / expected.abs().max()))
        assert prior.calls == 2 * n - 1
    assert errors[2] < 1e-2
    assert errors[0] / errors[1] > 3 and errors[1] / errors[2] > 3  # ~4x per halving: second order


def test_ddim_discretisation_error_shrinks_with_steps():
    errs = [
        abs(float(sample(GaussianPrior(0.5), (4, 32, 32), DDIMSampler(steps=n), torch.Generator().manual_seed(0)).std()) - 0.5)
        for n in (20, 50, 200)
    ]
    assert errs[0] > errs[1] > errs[2]


def test_sampling_is_reproducible_and_complex():
    prior = GaussianPrior(s=1.0, complex_data=True)
    a = sample(prior, (2, 8, 8), DDIMSampler(steps=10, eta=1.0), torch.Generator().manual_seed(1))
    b = sample(prior, (2, 8, 8), DDIMSampler(steps=10, eta=1.0), torch.Generator().manual_seed(1))
    assert a.is_complex() and torch.equal(a, b)


def _single_coil_problem():
    g = torch.Generator().manual_seed(0)
    x = torch.complex(torch.randn(1, 16, 16, generator=g), torch.randn(1, 16, 16, generator=g))
    mask = torch.zeros(1, 1, 16)
    mask[..., ::2] = 1
    y = fftc(x) * mask
    return x, mask, y


def test_hard_projection_is_consistent():
    x, mask, y = _single_coil_problem()
    op = MaskOperator(mask[0]) @ FourierOperator()
    dc = HardProjection(op, y)
    out = dc(torch.zeros_like(x), 1.0)
    # equals the textbook k-space replacement F^H((1 - M) F x + M y)
    x_hat = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.complex64)
    ref = ifftc(fftc(x_hat) * (1 - mask[0]) + y * mask[0])
    assert torch.allclose(dc(x_hat, 1.0), ref, atol=1e-5)
    assert torch.allclose(fftc(out) * mask, y, atol=1e-5)
    # posterior sampling with the projection reproduces the measured samples
    s = sample(GaussianPrior(1.0, True), (1, 16, 16), DDIMSampler(steps=10), torch.Generator().manual_seed(0), dc=dc)
    assert torch.allclose(fftc(s) * mask, y, atol=1e-4)
    with pytest.raises(ValueError, match="projection"):
        HardProjection(MaskOperator(mask[0] * 0.5) @ FourierOperator(), y)


def test_proximal_cg_and_gradient_guidance_reduce_the_residual():
    x, mask, y = _single_coil_problem()
    op = SenseOperator(torch.ones(1, 1, 16, 16, dtype=torch.complex64), mask[None])
    yy = op(x)
    x0 = torch.zeros_like(x)

    def res(v):
        return float(torch.linalg.vector_norm(op(v) - yy))

    assert res(ProximalCG(op, yy, iters=3)(x0, 1.0)) < 1e-3 * res(x0)
    prox = ProximalCG(op, yy, iters=20, lam=1.0)(x0, 1.0)
    assert 0.1 * res(x0) < res(prox) < 0.9 * res(x0)  # pulled toward x0 by λ
    gg = GradientGuidance(op, yy, step=1.0, iters=3)
    assert gg.lipschitz == pytest.approx(1.0, rel=1e-3)
    assert res(gg(x0, 1.0)) < 0.01 * res(x0)
    with pytest.raises(ValueError, match="step"):
        GradientGuidance(op, yy, step=3.0)


def test_truncated_schedule_starts_where_asked():
    pairs = VPSchedule().inference_timesteps(20, start=0.3)
    ts = [t for t, _ in pairs]
    assert ts[0] == round(0.3 * 999) and ts[-1] == 0 and len(pairs) == 20
    assert all(a > b for a, b in zip(ts, ts[1:])) and [tp for _, tp in pairs] == ts[1:] + [-1]
    with pytest.raises(ValueError, match="steps"):
        VPSchedule().inference_timesteps(50, start=0.02)  # t0 = 20: at most 21 steps
    with pytest.raises(ValueError, match="start"):
        VPSchedule().inference_timesteps(10, start=0.0)
    sig = VESchedule(0.01, 20.0).sigmas(10, start=0.5)
    assert float(sig[0]) == pytest.approx(math.sqrt(0.01 * 20.0)) and float(sig[-1]) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "make",
    [
        lambda s: DDIMSampler(VPSchedule(), 100, eta=1.0, start=s),
        lambda s: VEPCSampler(VESchedule(0.01, 20.0), 100, n_corrector=0, start=s),
    ],
    ids=["ddim", "ve-pc"],
)
def test_warm_start_keeps_the_prior_and_the_start(make):
    """A chain started from a prior draw diffused to level t₀ still samples the prior (spread 0.5)
    and stays the closer to its start the lower t₀ is (the VE chain without Langevin corrector:
    Langevin steps on the prior alone mix away from any start, as they should)."""
    prior = GaussianPrior(s=0.5)
    x_start = 0.5 * torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(1))

    def corr(a, b):
        return float((a * b).sum() / (a.norm() * b.norm()))

    cs = []
    for start in (0.1, 0.5):
        x = sample(prior, (4, 32, 32), make(start), torch.Generator().manual_seed(0), x_start=x_start)
        assert abs(float(x.std()) - 0.5) / 0.5 < 0.1
        cs.append(corr(x, x_start))
    assert cs[0] > 0.6 and cs[0] > cs[1] + 0.15  # DDIM η=1 from t=100: 0.69 (Gaussian theory ≈ 0.67)
    with pytest.raises(ValueError, match="x_start"):
        sample(prior, (4, 32, 32), make(0.5), torch.Generator().manual_seed(0), x_start=x_start[:2])
