import nibabel as nib
import numpy as np
import pytest

from medrecon.datasets.training_images import load_training_images
from medrecon.errors import InputFileError


def _nifti(path, shape, value=1.0):
    vol = np.full(shape, value, dtype=np.float32)
    vol[..., 0] = 0.0  # an empty slice at the end of the volume
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    return path


def test_npz_and_nifti_with_synthetic_phase(tmp_path):
    imgs = (np.random.default_rng(0).random((3, 8, 10)) * np.exp(1j)).astype(np.complex64)
    np.savez(tmp_path / "c.npz", images=imgs)
    out = load_training_images([tmp_path / "c.npz"])
    assert out.dtype == np.complex64 and np.array_equal(out, imgs)
    nii = _nifti(tmp_path / "m.nii.gz", (8, 10, 4), 2.0)
    mag = load_training_images([nii], min_fraction=0.5)
    assert mag.dtype == np.float32 and mag.shape == (3, 8, 10)  # the empty slice is dropped
    cplx = load_training_images([nii], synthetic_phase=True, min_fraction=0.5, seed=1)
    assert cplx.dtype == np.complex64 and np.allclose(np.abs(cplx), 2.0) and np.angle(cplx).std() > 0.01


def test_sizes_differ_error_or_padding(tmp_path):
    a = _nifti(tmp_path / "a.nii.gz", (8, 10, 3))
    b = _nifti(tmp_path / "b.nii.gz", (12, 6, 3), 3.0)
    with pytest.raises(InputFileError, match="b.nii.gz.*image size"):
        load_training_images([a, b])
    out = load_training_images([a, b], pad_to_common=True)
    assert out.shape == (4, 12, 10)
    assert np.all(out[0, 2:10, :] == 1.0) and np.all(out[0, :2] == 0) and np.all(out[0, 10:] == 0)  # a centred
    assert np.all(out[2, :, 2:8] == 3.0) and np.all(out[2, :, :2] == 0) and np.all(out[2, :, 8:] == 0)  # b centred
