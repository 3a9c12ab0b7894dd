"""Synthetic-CT training pairs: subject folders, paired files, PET/CT .npz; held-out slabs, 2.5-D, geometry rules."""

import json

import numpy as np
import pytest
from head_phantom import AFFINE, head, make_subject, sct_config, write_nifti

from medrecon.cli.main import main
from medrecon.datasets.sct_training import load_sct_training_pairs, stack_neighbours
from medrecon.errors import InputFileError


@pytest.fixture
def subject(tmp_path):
    return make_subject(tmp_path)


def test_subject_folder_pairs_with_holdout_and_neighbours(subject):
    pairs = load_sct_training_pairs([subject], holdout={str(subject): (3, 4)}, neighbours=1, min_fraction=0)
    # slices 3-4 held out, and 2 and 5 whose neighbours reach into them
    assert pairs.images.shape == (4, 32, 32) and pairs.conds.shape == (4, 3, 32, 32)
    ct, mr = head()
    kept = [0, 1, 6, 7]
    np.testing.assert_allclose(pairs.images, np.clip(ct[kept], -1024, 3071) / 1000, rtol=1e-6)
    scaled = pairs.conds[:, 1]
    np.testing.assert_allclose(scaled / scaled.max(), mr[kept] / mr[kept].max(), rtol=1e-5)
    np.testing.assert_array_equal(pairs.conds[0, 0], pairs.conds[0, 1])  # clamped at the first slice
    assert pairs.holdout == [{"path": "subject1", "axis": "S", "slices": [3, 4]}]
    assert pairs.axcodes == ["R", "A", "S"] and pairs.spacing_mm == (2.0, 2.0) and pairs.slice_mm == 3.0
    assert pairs.condition["modality"] == "MR" and len(pairs.condition["fingerprint"]) == 9


def test_stack_neighbours_clamps_at_the_ends():
    v = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    out = stack_neighbours(v, np.ones(4, bool), 1)
    assert out.shape == (4, 3, 2, 2)
    assert out[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def test_geometry_rules(tmp_path, subject):
    ct, mr = head()
    other = write_nifti(mr * 900, tmp_path / "mr_shifted.nii.gz", AFFINE @ np.diag([1, 1, 1, 1.0]) + np.eye(4) * 0 + _shift(5.0))
    with pytest.raises(InputFileError, match="resample"):
        load_sct_training_pairs([subject / "ct.nii.gz"], [other])
    pairs = load_sct_training_pairs([subject / "ct.nii.gz"], [other], resample=True, min_fraction=0)
    assert pairs.conds.shape[0] == 8
    raw = write_nifti(ct + 1024.0, tmp_path / "ct_raw.nii.gz")  # stored values without the rescale
    with pytest.raises(InputFileError, match="Hounsfield"):
        load_sct_training_pairs([raw], [subject / "mr.nii.gz"])
    lps = write_nifti(ct, tmp_path / "ct_lps.nii.gz", np.diag([-2.0, -2.0, 3.0, 1.0]))
    write_nifti(mr, tmp_path / "mr_lps.nii.gz", np.diag([-2.0, -2.0, 3.0, 1.0]))
    with pytest.raises(InputFileError, match="orientation"):
        load_sct_training_pairs([subject / "ct.nii.gz", lps], [subject / "mr.nii.gz", tmp_path / "mr_lps.nii.gz"])


def _shift(mm: float) -> np.ndarray:
    s = np.zeros((4, 4))
    s[0, 3] = mm
    return s


def test_pet_ct_npz_pairs(tmp_path):
    rng = np.random.default_rng(0)
    ct = np.clip(rng.uniform(0, 1, (3, 40, 40)), 0, 1).astype(np.float32)
    ct[:, :4] = 0.0  # air (−1024 HU) at the top
    np.savez(tmp_path / "pairs.npz", pet_nac=rng.uniform(0.1, 1, (3, 20, 20)).astype(np.float32), ct=ct)
    pairs = load_sct_training_pairs([tmp_path / "pairs.npz"], holdout={str(tmp_path / "pairs.npz"): (2, 2)}, min_fraction=0)
    assert pairs.images.shape == (2, 20, 20) and pairs.conds.shape == (2, 1, 20, 20) and pairs.condition["modality"] == "PET"
    np.testing.assert_allclose(pairs.conds.reshape(2, -1).mean(axis=1), 1 / 20, rtol=1e-5)  # activity / (20 x mean)
    np.savez(tmp_path / "test.npz", pet_nac=rng.uniform(0.1, 1, (2, 20, 20)).astype(np.float32), ct=ct[:2])
    whole = load_sct_training_pairs([tmp_path / "pairs.npz", tmp_path / "test.npz"], holdout={str(tmp_path / "test.npz"): (0, 1)})
    assert whole.images.shape == (3, 20, 20) and whole.holdout == [{"path": "test.npz", "axis": "S", "slices": [0, 1]}]
    with pytest.raises(InputFileError, match="neighbours"):
        load_sct_training_pairs([tmp_path / "pairs.npz"], neighbours=1)


def test_train_records_the_slab_and_refuses_bad_pairs(tmp_path, subject, capsys):
    data = f"data:\n  paths: [{subject}]\n  intensity: sct\n  min_fraction: 0\n  condition:\n    guide: true\n    neighbours: 1\n"
    data += f"  holdout:\n    - path: {subject}\n      slices: [3, 4]\n"
    assert main(["train", "--config", str(sct_config(tmp_path, data)), "--quiet"]) == 0
    info = json.loads((tmp_path / "prior" / "prior.json").read_text())
    assert info["holdout"] == [{"path": "subject1", "axis": "S", "slices": [3, 4]}]
    assert info["prior"]["cond_channels"] == 3 and info["modality"] == "CT" and info["normalisation"] == "HU / 1000"
    assert info["condition"]["neighbours"] == 1 and info["pixel_mm"] == [2.0, 2.0] and info["axcodes"] == ["R", "A", "S"]
    assert info["prediction"] == "v"  # a translation DDPM predicts v unless told otherwise
    eps = ["--set", "train.prediction=epsilon", "--output", str(tmp_path / "eps")]
    assert main(["train", "--config", str(sct_config(tmp_path, data)), "--quiet", *eps]) == 0
    assert "prediction" not in json.loads((tmp_path / "eps" / "prior.json").read_text())  # ε, as asked
    capsys.readouterr()
    bad = write_nifti(head(6)[1], tmp_path / "mr6.nii.gz")
    data = f"data:\n  paths: [{subject / 'ct.nii.gz'}]\n  intensity: sct\n  condition:\n    paths: [{bad}]\n"
    assert main(["train", "--config", str(sct_config(tmp_path, data, out="p2")), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "mr6.nii.gz: geometry: expected the CT's grid" in err and not (tmp_path / "p2").exists()
    data = f"data:\n  paths: [{subject}]\n  condition:\n    guide: true\n"  # no intensity: sct
    assert main(["train", "--config", str(sct_config(tmp_path, data, out="p3")), "--quiet"]) == 2
    data = f"data:\n  paths: [{subject}]\n  intensity: sct\n"  # no condition
    assert main(["train", "--config", str(sct_config(tmp_path, data, out="p4")), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "p3.yaml: data.intensity: expected 'pet' (the stored CT) or 'sct'" in err and "got 'percentile'" in err
    assert "p4.yaml: data.condition: expected paths (the MR of each CT) or guide: true" in err and err.rstrip().endswith("got none")
