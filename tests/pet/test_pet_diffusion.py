"""PET with a diffusion prior: the Poisson likelihood step (pinned to MLEM), guided training, the CLI, refusals."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from medrecon.cli.main import main
from medrecon.diffusion.consistency import PoissonProximalEM
from medrecon.physics.ct import CTGeometry
from medrecon.physics.pet import EmissionOperator
from medrecon.tasks.pet.em import osem


def _problem(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    geom = CTGeometry.create("parallel", (n, n), (2.0, 2.0), 24)
    op = EmissionOperator(geom, torch.rand((1, *geom.sino_shape), generator=g) * 0.5 + 0.5)
    yy, xx = torch.meshgrid(torch.arange(n) - (n - 1) / 2, torch.arange(n) - (n - 1) / 2, indexing="ij")
    x = ((yy**2 + xx**2) < (n / 2.5) ** 2).float()[None] * 20 + 1
    r = torch.full((1, *geom.sino_shape), 0.3)
    return op, torch.poisson(op(x) + r, generator=g), r, x


def test_likelihood_step_without_proximal_weight_is_mlem():
    op, y, r, x = _problem()
    z = torch.full_like(x, float(x.mean()))
    dc = PoissonProximalEM(op, y, r, scale=torch.tensor([2.0]), lam=0.0, iters=3)
    got = dc(z / 2.0, 0.0) * 2.0
    torch.testing.assert_close(got, osem(op, y, r, iterations=3, subsets=1, x0=z), rtol=1e-4, atol=1e-4)


def test_likelihood_step_solves_the_proximal_problem():
    """One step: s x_EM / x − s − λ (x − z) = 0 per pixel; a huge weight returns x̂₀."""
    op, y, r, x = _problem()
    z = x * 0.8 + 0.5
    rho = 0.7
    dc = PoissonProximalEM(op, y, r, scale=torch.tensor([1.0]), lam=rho, iters=1)
    out = dc(z, 0.0)
    s = op.adjoint(torch.ones_like(y))
    x_em = z / s * op.adjoint(y / (op(z) + r))
    lam = rho * s / z.mean()
    resid = s * x_em / out - s - lam * (out - z)
    assert float(resid.abs().max()) < 1e-3 * float(s.max())
    far = PoissonProximalEM(op, y, r, scale=torch.tensor([1.0]), lam=1e6, iters=2)(z, 0.0)
    torch.testing.assert_close(far, z, rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError):
        PoissonProximalEM(op, y, r, scale=torch.tensor([1.0]), lam=-1.0)


def _pairs(path, n=4, size=32):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    pets, cts = [], []
    for k in range(n):
        head = (xx**2 + yy**2) < (0.4 * size) ** 2
        pet = np.where(head, 1.0, 0.0) + 3.0 * ((xx - 4 + k) ** 2 + yy**2 < 9)
        hu = np.where(head, 30.0, -1000.0)
        pets.append(pet)
        cts.append((hu + 1024) / 2524)
    np.savez(path, pet_nac=np.stack(pets).astype(np.float32), ct=np.stack(cts).astype(np.float32))
    return path


def _tiny_config(tmp_path, data: str, train_extra: str = ""):
    """``pet.yaml``: the ``data`` section's lines, a tiny guided U-Net trained 2 steps into ``prior/``."""
    cfg = tmp_path / "pet.yaml"
    cfg.write_text(
        f"data:\n  {data}\n"
        "prior:\n  channels: [8, 8]\n  attention_levels: [false, false]\n  num_head_channels: 8\n  norm_num_groups: 4\n"
        f"train:\n  steps: 2\n  batch_size: 2\n  crop: 16\n  checkpoint_every: 2\n{train_extra}"
        f"output: {tmp_path / 'prior'}\n"
    )
    return cfg


def test_guided_pet_prior_end_to_end(tmp_path, capsys):
    data = _pairs(tmp_path / "pairs.npz")
    cfg = _tiny_config(tmp_path, f"paths: [{data}]\n  intensity: pet\n  condition:\n    guide: true", "  cond_dropout: 0.5\n")
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    info = json.loads((tmp_path / "prior" / "prior.json").read_text())
    assert info["normalisation"].startswith("activity / (20") and info["prior"]["cond_channels"] == 1 and info["pixel_mm"] == 2.0
    sino = tmp_path / "sino.h5"
    assert main(["simulate", "pet", "--input", str(data), "--slices", "1-2", "--views", "30", "--counts", "1e5", "--out", str(sino)]) == 0
    args = ["reconstruct", "pet", str(sino), "--prior", str(tmp_path / "prior"), "--steps", "2", "--quiet"]
    assert main([*args, "--samples", "2", "--out", str(tmp_path / "dm.nii.gz")]) == 0
    mean, std = nib.load(tmp_path / "dm.nii.gz").get_fdata(), nib.load(tmp_path / "dm_std.nii.gz").get_fdata()
    assert mean.shape == std.shape == (32, 32, 2) and np.all(np.isfinite(mean)) and mean.min() >= 0 and std.min() >= 0
    # EM likelihood steps (no proximal pull to this untrained prior) restore the measured activity
    # level whatever the network says: the scale and calibration chain, within 15 % of the truth's mean
    assert main([*args, "--set", "dc_lam=0", "--set", "dc_iters=4", "--out", str(tmp_path / "em.nii.gz")]) == 0
    level = nib.load(tmp_path / "em.nii.gz").get_fdata().mean()
    assert float(level) == pytest.approx(float(np.load(data)["pet_nac"][1:3].mean()), rel=0.15)
    assert main([*args, "--guide", "none", "--out", str(tmp_path / "un.nii.gz")]) == 0
    # warm-started from MAP-EM: the same EM-only chain lands on the same activity level
    assert main([*args, "--set", "init=mapem", "--set", "dc_lam=0", "--set", "dc_iters=4", "--out", str(tmp_path / "map.nii.gz")]) == 0
    assert float(nib.load(tmp_path / "map.nii.gz").get_fdata().mean()) == pytest.approx(float(level), rel=0.05)
    capsys.readouterr()
    # a PET prior for CT, a CT-style option for diffusion, a missing prior
    ct_sino = tmp_path / "ct.h5"
    vol = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.full((32, 32, 1), 40.0, np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), vol)
    assert main(["simulate", "ct", "--input", str(vol), "--views", "20", "--out", str(ct_sino), "--quiet"]) == 0
    assert (
        main(["reconstruct", "ct", str(ct_sino), "--prior", str(tmp_path / "prior"), "--out", str(tmp_path / "x.nii.gz"), "--quiet"]) == 2
    )
    assert "expected a CT prior" in capsys.readouterr().err
    assert main([*args, "--iters", "3", "--out", str(tmp_path / "y.nii.gz")]) == 2
    assert "classical settings" in capsys.readouterr().err
    assert main(["reconstruct", "pet", str(sino), "--prior", "ct", "--out", str(tmp_path / "z.nii.gz"), "--quiet"]) == 2
    assert "expected a PET prior" in capsys.readouterr().err
    assert not any((tmp_path / f).exists() for f in ("x.nii.gz", "y.nii.gz", "z.nii.gz"))
    # image-domain denoising (PET-DDPM's setting): a low-count image in Bq/ml with its CT
    from medrecon.datasets.image_io import write_nifti
    from medrecon.datasets.pet_dicom import read_pet, write_pet_nifti

    pairs = np.load(data)
    noisy = np.random.default_rng(0).poisson(pairs["pet_nac"][:2] * 50).astype(np.float32) * 100.0
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    write_pet_nifti(noisy, aff, tmp_path / "low.nii.gz", unit="BQML")
    write_nifti(np.stack([np.where(pairs["pet_nac"][0] > 0, 30.0, -1000.0)] * 2).astype(np.float32), tmp_path / "g.nii.gz", affine=aff)
    den = ["denoise", "pet", str(tmp_path / "low.nii.gz"), "--prior", str(tmp_path / "prior"), "--steps", "2", "--quiet"]
    assert main([*den, "--guide", str(tmp_path / "g.nii.gz"), "--samples", "2", "--out", str(tmp_path / "den.nii.gz")]) == 0
    out = read_pet(tmp_path / "den.nii.gz", "as-stored")
    assert out.unit == "BQML" and out.values.shape == (2, 32, 32) and np.all(np.isfinite(out.values))
    assert (tmp_path / "den_std.nii.gz").exists()
    # λ = 0: the proximal step returns the measured image itself, in its unit (the scale chain)
    assert main([*den, "--set", "dc_lam=0", "--out", str(tmp_path / "den2.nii.gz")]) == 0  # no guide: unguided
    np.testing.assert_allclose(read_pet(tmp_path / "den2.nii.gz", "as-stored").values, noisy, rtol=1e-4, atol=1e-2)
    write_nifti(np.full((2, 32, 32), -1000.0, np.float32), tmp_path / "blank.nii.gz", affine=aff)
    capsys.readouterr()
    assert main([*den, "--guide", str(tmp_path / "blank.nii.gz"), "--out", str(tmp_path / "den3.nii.gz")]) == 2
    assert "blank CT" in capsys.readouterr().err and not (tmp_path / "den3.nii.gz").exists()


def test_pet_prior_from_volumes_with_their_ct(tmp_path, capsys):
    """PET NIfTI volumes with their CT volumes (resampled onto the PET grid); empty end slices left out."""
    from medrecon.datasets.image_io import write_nifti
    from medrecon.datasets.pet_training import load_pet_training_slices

    yy, xx = np.mgrid[:32, :32] - 15.5
    body = (xx**2 + yy**2) < 12**2
    act = np.stack([np.zeros((32, 32)), body * 1.0, body * 2.0 + ((xx - 4) ** 2 + yy**2 < 9) * 5.0, np.zeros((32, 32))])
    hu = np.stack([np.where(body, 40.0, -1000.0)] * 4)
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    for k in range(2):
        write_nifti(act.astype(np.float32) * (1 + k), tmp_path / f"pet{k}.nii.gz", affine=aff)
        ct_aff = np.diag([1.0, 1.0, 3.0, 1.0])
        ct_aff[:3, 3] = [-0.5, -0.5, 0.0]  # the same field of view on a 1 mm grid
        write_nifti(np.repeat(np.repeat(hu, 2, axis=1), 2, axis=2), tmp_path / f"ct{k}.nii.gz", affine=ct_aff)
    pets = [str(tmp_path / f"pet{k}.nii.gz") for k in range(2)]
    cts = [str(tmp_path / f"ct{k}.nii.gz") for k in range(2)]
    slices = load_pet_training_slices(pets, 0.0, cts)
    assert slices.images.shape == (4, 32, 32) and slices.guides.shape == (4, 1, 32, 32) and slices.pixel_mm == 2.0
    assert np.allclose(slices.images.reshape(4, -1).mean(axis=1), 1 / 20)  # each slice over 20 × its mean
    assert abs(float(slices.guides[0, 0, 16, 16]) - 0.04) < 0.01 and abs(float(slices.guides[0, 0, 0, 0]) + 1.0) < 0.01
    cfg = _tiny_config(tmp_path, f"paths: [{', '.join(pets)}]\n  intensity: pet\n  condition:\n    paths: [{', '.join(cts)}]")
    assert main(["train", "--config", str(cfg), "--quiet"]) == 0
    info = json.loads((tmp_path / "prior" / "prior.json").read_text())
    assert info["prior"]["cond_channels"] == 1 and info["pixel_mm"] == 2.0 and info["condition"]["guide"] == "CT"
    bad = tmp_path / "bad.yaml"
    bad.write_text(cfg.read_text().replace(pets[0], str(tmp_path / "pairs.npz")))
    assert main(["train", "--config", str(bad), "--quiet"]) == 2
    assert "condition.paths" in capsys.readouterr().err
