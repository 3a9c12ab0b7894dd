"""Conditional priors trained from a YAML file: paired condition files, or conditions simulated per draw."""

import json

import numpy as np
import pytest
import torch

from medrecon.cli.main import main
from medrecon.diffusion.pairs import TrainingPairs
from medrecon.diffusion.prior_folder import load_prior

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


def test_edge_focused_crops_follow_the_gradient_weights():
    """crop_focus 'edges': patch centres drawn with probability ∝ 1 + |∇x| / mean|∇x| (computed here with NumPy)."""
    rng = np.random.default_rng(3)
    img = np.zeros((12, 14), np.float32)
    img[:, 9:] = 1.0  # one vertical edge
    img += 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    crop = 4
    grad = np.zeros_like(img)
    grad[:-1] += np.diff(img, axis=0) ** 2
    grad[:, :-1] += np.diff(img, axis=1) ** 2
    w = 1 + np.sqrt(grad) / np.sqrt(grad).mean()
    expected = w[crop // 2 : crop // 2 + 12 - crop + 1, crop // 2 : crop // 2 + 14 - crop + 1]
    expected = expected / expected.sum()
    imgs = torch.from_numpy(np.stack([img, img]))
    cond = imgs[:, None] + 2.0
    pairs = TrainingPairs(imgs, cond=cond, crop=crop, crop_focus="edges")
    counts = np.zeros_like(expected)
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        xb, cb = pairs.batch(500, g)
        assert torch.equal(cb[:, 0], xb + 2.0)  # the condition's patch is the same region
        for patch in xb.numpy():  # locate each patch's origin in the image
            hits = [
                (i, j)
                for i in range(expected.shape[0])
                for j in range(expected.shape[1])
                if np.array_equal(img[i : i + crop, j : j + crop], patch)
            ]
            assert len(hits) == 1
            counts[hits[0]] += 1
    assert np.abs(counts / counts.sum() - expected).max() < 0.006
    near_edge = expected[:, 9 - crop + 1 : 10].sum()  # origins whose patch holds the edge
    uniform = expected[:, 9 - crop + 1 : 10].size / expected.size
    assert near_edge > 1.3 * uniform  # the edge is seen more often than under uniform crops
    vol = rng.standard_normal((5, 7, 6)).astype(np.float32)  # a 3-D prior's volume: slice differences count too
    g3 = np.zeros_like(vol)
    for ax in range(3):
        d = np.diff(vol, axis=ax) ** 2
        g3[tuple(slice(0, n) for n in d.shape)] += d
    w3 = 1 + np.sqrt(g3) / np.sqrt(g3).mean()
    got = TrainingPairs(torch.from_numpy(vol[None]), crop=3, crop_focus="edges")._origin_weights(torch.tensor([0]))[0]
    np.testing.assert_allclose(got.numpy(), w3[1:4, 1:6, 1:5].ravel(), rtol=1e-5)
    with pytest.raises(ValueError, match="crop_focus"):
        TrainingPairs(imgs, crop=crop, crop_focus="bones")
