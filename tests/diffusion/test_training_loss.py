"""``TrainConfig.loss``: the DDPM / score objectives under L2 (default) or L1, pinned to the
explicit formulas on the same noise draws; the regression baseline takes no ``loss``."""

import pytest
import torch

from medrecon.diffusion.schedule import VPSchedule
from medrecon.diffusion.training import TrainConfig, _loss


class Constant(torch.nn.Module):
    """Stands in for the network: predicts the same value everywhere, whatever its input."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x, t, cond=None):
        return torch.full_like(x, self.value)


def _targets(cfg: TrainConfig, x0: torch.Tensor, seed: int) -> torch.Tensor:
    """The ε or v targets ``_loss`` draws with ``Generator().manual_seed(seed)`` (noise first, then t)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.unsqueeze(1).shape, generator=g)
    t = torch.randint(0, cfg.num_train_timesteps, (x0.shape[0],), generator=g)
    ab = VPSchedule(cfg.num_train_timesteps).alphas_cumprod()[t].reshape(-1, 1, 1, 1)
    return noise if cfg.prediction == "epsilon" else torch.sqrt(ab) * noise - torch.sqrt(1 - ab) * x0.unsqueeze(1)


@pytest.mark.parametrize("prediction", ["epsilon", "v"])
def test_l1_and_l2_losses_match_their_formulas(prediction):
    x0 = torch.rand(6, 8, 8)
    net = Constant(0.3)
    for loss, reduce in (("l2", lambda e: (e**2).mean()), ("l1", lambda e: e.abs().mean())):
        cfg = TrainConfig(objective="ddpm", prediction=prediction, num_train_timesteps=100, loss=loss)
        got = _loss(net, cfg, x0, None, torch.Generator().manual_seed(5))
        want = reduce(0.3 - _targets(cfg, x0, 5))
        torch.testing.assert_close(got, want)
    l1 = _loss(net, TrainConfig(loss="l1", num_train_timesteps=100), x0, None, torch.Generator().manual_seed(5))
    l2 = _loss(net, TrainConfig(loss="l2", num_train_timesteps=100), x0, None, torch.Generator().manual_seed(5))
    assert not torch.isclose(l1, l2)  # the setting changes the loss


def test_the_regression_takes_no_loss_setting():
    with pytest.raises(ValueError, match="objective 'regression', which always trains under L1"):
        TrainConfig(objective="regression", loss="l1")
    assert TrainConfig().loss == "l2"
