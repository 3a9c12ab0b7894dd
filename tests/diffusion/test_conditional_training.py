"""Conditional priors trained from a YAML file: paired condition files, or conditions simulated per draw."""

import json

import numpy as np
import pytest
import torch

from medrecon.cli.main import main
from medrecon.diffusion.pairs import TrainingPairs
from medrecon.diffusion.training import load_prior

TINY = (
    "prior:\n  channels: [16, 16]\n  attention_levels: [false, false]\n  num_head_channels: 16\n  norm_num_groups: 8\n"
    "train:\n  objective: ddpm\n  steps: 4\n  batch_size: 2\n  crop: 16\n  checkpoint_every: 4\n"
)


def _slices(n=6, size=24, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    return np.stack([np.exp(-((yy - rng.uniform(6, 18)) ** 2 + (xx - rng.uniform(6, 18)) ** 2) / 30.0) for _ in range(n)]).astype(
        np.float32
    )


def test_paired_condition_files(tmp_path):
    ct = _slices()
    np.savez(tmp_path / "ct.npz", images=ct)
    np.savez(tmp_path / "mr.npz", images=np.sqrt(ct))  # a stand-in for registered MR slices
    cfg = tmp_path / "pairs.yaml"
    cfg.write_text(
        f"data:\n  paths: [{tmp_path / 'ct.npz'}]\n  min_fraction: 0\n  condition:\n    paths: [{tmp_path / 'mr.npz'}]\n"
        + TINY
        + f"output: {tmp_path / 'out'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    d = load_prior(tmp_path / "out")
    assert d.net.cond_channels == 1 and "condition: mr.npz" in d.info["data"]
    x = torch.zeros(1, 24, 24)
    assert d(x, torch.tensor([1.0]), torch.zeros(1, 1, 24, 24)).shape == (1, 24, 24)
    # a mismatched pair is refused with the file named
    np.savez(tmp_path / "mr.npz", images=np.sqrt(ct)[:, :20])
    assert main(["train", "--config", str(cfg), "--quiet", "--output", str(tmp_path / "o2")]) == 2


def test_simulated_limited_angle_condition(tmp_path, capsys):
    np.savez(tmp_path / "ct.npz", images=_slices())
    cfg = tmp_path / "sim.yaml"
    cfg.write_text(
        f"data:\n  paths: [{tmp_path / 'ct.npz'}]\n  condition:\n    simulate: ct_limited_angle_fbp\n"
        "    options: {arc_min_deg: 60, arc_max_deg: 90}\n" + TINY + f"output: {tmp_path / 'out'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet", "--set", "train.steps=3"]) == 0
    info = json.loads((tmp_path / "out" / "prior.json").read_text())
    assert info["prior"]["cond_channels"] == 1 and info["training_steps"] == 3 and "ct_limited_angle_fbp" in info["data"]
    cfg.write_text(cfg.read_text().replace("ct_limited_angle_fbp", "no_such_simulator"))
    assert main(["train", "--config", str(cfg), "--quiet", "--output", str(tmp_path / "o3")]) == 2
    assert "data.condition.simulate: expected one of" in capsys.readouterr().err


def test_simulated_conditions_are_cropped_with_their_images():
    """The simulator sees the whole image; the patch of the condition is the same region."""
    imgs = torch.from_numpy(_slices(4, 20))

    def shift(x, g):  # condition = image + 1 (any per-pixel map keeps regions comparable)
        return (x + 1.0)[:, None]

    pairs = TrainingPairs(imgs, simulate=shift, crop=8)
    xb, cb = pairs.batch(5, torch.Generator().manual_seed(0))
    assert xb.shape == (5, 8, 8) and cb.shape == (5, 1, 8, 8) and torch.equal(cb[:, 0], xb + 1.0)
    x0, c0 = pairs[2]
    assert torch.equal(c0[0], x0 + 1.0)
    with pytest.raises(ValueError, match="both"):
        TrainingPairs(imgs, cond=imgs[:, None], simulate=shift)
