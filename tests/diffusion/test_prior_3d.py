"""3-D priors: MONAI's DiffusionModelUNet with spatial_dims=3, trained on random 3-D patches,
loaded from safetensors + JSON and sampled on a volume of another size."""

import json
import math

import pytest
import torch

from medrecon.diffusion.denoiser import UNetPrior
from medrecon.diffusion.pairs import TrainingPairs
from medrecon.diffusion.sampling import DDIMSampler, sample
from medrecon.diffusion.training import (
    TrainConfig,
    load_prior,
    normalise_images,
    train_prior,
)


def _volumes(n=3, d=10, h=20, w=18):
    g = torch.Generator().manual_seed(0)
    zz, yy, xx = torch.meshgrid(torch.arange(d), torch.arange(h), torch.arange(w), indexing="ij")
    vols = []
    for _ in range(n):
        c = torch.rand(3, generator=g) * torch.tensor([d, h, w])
        vols.append(torch.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / 20.0))
    return torch.stack(vols).float()


def test_random_crops_are_3d_patches_of_the_volumes():
    x = torch.arange(2 * 6 * 7 * 8, dtype=torch.float32).reshape(2, 6, 7, 8)
    cond = x[:, None] * 2
    xb, cb = TrainingPairs(x, cond, crop=4).batch(5, torch.Generator().manual_seed(1))
    assert xb.shape == (5, 4, 4, 4) and cb.shape == (5, 1, 4, 4, 4)
    assert torch.equal(cb[:, 0], 2 * xb)
    for p in xb:  # each patch is a contiguous block of one volume
        i, z, y, w = [int(v) for v in torch.nonzero(x == p[0, 0, 0])[0]]
        assert torch.equal(p, x[i, z : z + 4, y : y + 4, w : w + 4])


def test_train_load_and_sample_a_3d_prior(tmp_path):
    vols = normalise_images(_volumes())
    args = dict(channels=[8, 8], attention_levels=[False, False], num_head_channels=8, norm_num_groups=4, spatial_dims=3)
    cfg = TrainConfig(objective="ddpm", steps=3, batch_size=2, crop=8, checkpoint_every=3)
    res = train_prior(vols, cfg, tmp_path, args)
    assert res["steps"] == 3 and math.isfinite(res["final_loss"])
    info = json.loads((tmp_path / "prior.json").read_text())
    assert info["prior"]["spatial_dims"] == 3 and info["image_shape"] == [10, 20, 18]
    d = load_prior(tmp_path)
    assert d.net.spatial_dims == 3
    x = sample(d, (2, 6, 12, 10), DDIMSampler(steps=2), torch.Generator().manual_seed(0))  # any size: pad and crop inside
    assert x.shape == (2, 6, 12, 10) and torch.isfinite(x).all()
    with pytest.raises(ValueError, match="D, H, W"):
        d(torch.zeros(1, 12, 10), torch.ones(1))


def test_3d_prior_rejects_slices_and_2d_prior_rejects_volumes(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, D, H, W\) for a 3-D prior"):
        train_prior(torch.zeros(2, 8, 8), TrainConfig(steps=1), tmp_path, dict(spatial_dims=3))
    with pytest.raises(ValueError, match=r"\(N, H, W\) for a 2-D prior"):
        train_prior(torch.zeros(2, 4, 8, 8), TrainConfig(steps=1), tmp_path)
    with pytest.raises(ValueError, match="spatial_dims"):
        UNetPrior(spatial_dims=1)
    assert "spatial_dims" not in UNetPrior(channels=(8, 8), attention_levels=(False, False), num_head_channels=8, norm_num_groups=4).config


def test_mri_reconstruction_refuses_a_3d_prior(tmp_path):
    from medrecon.tasks.mri.diffusion import DiffusionConfig, check_prior_for

    vols = normalise_images(_volumes(n=2).to(torch.complex64))
    args = dict(channels=[8, 8], attention_levels=[False, False], num_head_channels=8, norm_num_groups=4, spatial_dims=3)
    train_prior(vols, TrainConfig(steps=1, batch_size=1, crop=8, checkpoint_every=1), tmp_path, args)
    with pytest.raises(ValueError, match="3-D prior"):
        check_prior_for(load_prior(tmp_path), (20, 18), DiffusionConfig(), "x.h5")


def test_cli_trains_a_3d_prior_on_nifti_volumes_of_two_sizes(tmp_path, capsys):
    import nibabel as nib
    import numpy as np

    from medrecon.cli.main import main

    paths = []
    for i, shape in enumerate(((12, 16, 10), (14, 18, 8))):  # NIfTI (i, j, k): read as (k, i, j)
        vol = np.zeros(shape, np.float32)
        vol[3:-3, 3:-3, 2:-2] = 1.0 + i
        paths.append(tmp_path / f"v{i}.nii.gz")
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(paths[-1]))
    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        f"data:\n  paths: [{paths[0]}, {paths[1]}]\n  synthetic_phase: true\n"
        "prior:\n  spatial_dims: 3\n  channels: [8, 8]\n  attention_levels: [false, false]\n  num_head_channels: 8\n  norm_num_groups: 4\n"
        f"train:\n  steps: 2\n  batch_size: 2\n  crop: 8\n  checkpoint_every: 2\noutput: {tmp_path / 'p'}\n"
    )
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    info = json.loads((tmp_path / "p" / "prior.json").read_text())
    assert info["prior"]["spatial_dims"] == 3 and info["prior"]["image_channels"] == 2
    assert info["image_shape"] == [10, 14, 18] and info["data"].startswith("2 volumes (10, 14, 18) from v0.nii.gz")
    x = sample(load_prior(tmp_path / "p"), (1, 8, 8, 8), DDIMSampler(steps=2), torch.Generator().manual_seed(0))
    assert x.shape == (1, 8, 8, 8) and x.is_complex()
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace("spatial_dims: 3", "spatial_dims: 4"))
    assert main(["train", "--config", str(bad), "--quiet"]) == 2
    assert "spatial_dims" in capsys.readouterr().err
