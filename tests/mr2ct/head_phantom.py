"""A small generated head (CT in HU and a T1-like MR on one grid) for the MR → CT tests."""

from pathlib import Path

import numpy as np

AFFINE = np.diag([2.0, 2.0, 3.0, 1.0])  # RAS, 2 mm pixels, 3 mm slices


def head(slices: int = 8, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``(ct_hu, mr)`` ``(slices, size, size)``: air outside, scalp, a skull ring (CT bone, MR dark), brain, a dark ventricle."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    ct = np.full((slices, size, size), -1000.0, np.float32)
    mr = np.zeros((slices, size, size), np.float32)
    for k in range(slices):
        outer = size * (0.42 - 0.01 * abs(k - slices / 2))
        ct[k][r < outer] = 40.0
        mr[k][r < outer] = 0.8
        ring = (r < outer - 2) & (r >= outer - 5)
        ct[k][ring] = 1000.0
        mr[k][ring] = 0.05
        ct[k][r < 3] = 5.0  # ventricle: fluid, dark on T1, not bone
        mr[k][r < 3] = 0.1
        mr[k][(r < outer - 5) & (r >= 3)] = 0.6
    return ct, mr


def write_nifti(arr: np.ndarray, path: Path, affine: np.ndarray = AFFINE) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.transpose(arr, (2, 1, 0)).astype(np.float32), affine), str(path))
    return path


def make_subject(parent: Path) -> Path:
    """A SynthRAD-style subject folder ``parent/subject1``: ct.nii.gz, mr.nii.gz."""
    ct, mr = head()
    folder = parent / "subject1"
    folder.mkdir()
    write_nifti(ct, folder / "ct.nii.gz")
    write_nifti(mr * 900.0, folder / "mr.nii.gz")  # MR in arbitrary units
    return folder


TINY = (
    "prior:\n  channels: [16, 16]\n  attention_levels: [false, false]\n  num_head_channels: 16\n  norm_num_groups: 8\n"
    "train:\n  objective: {objective}\n  steps: {steps}\n  batch_size: 4\n  crop: 16\n  checkpoint_every: 100\n  lr: 0.003\n"
)


def sct_config(tmp_path: Path, data: str, objective: str = "ddpm", steps: int = 4, out: str = "prior") -> Path:
    cfg = tmp_path / f"{out}.yaml"
    cfg.write_text(data + TINY.format(objective=objective, steps=steps) + f"output: {tmp_path / out}\n")
    return cfg
