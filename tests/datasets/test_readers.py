import h5py
import numpy as np
import pytest
from mri_files import multicoil_volume, write_fastmri, write_skmtea

from medrecon.datasets.fastmri import FastMRIFile, parse_ismrmrd_header
from medrecon.datasets.image_io import read_volume, write_nifti, write_recon_h5, write_volume
from medrecon.datasets.npz_kspace import NpzKSpace
from medrecon.datasets.open_kspace import open_kspace
from medrecon.datasets.skmtea import SKMTEAFile
from medrecon.errors import InputFileError


@pytest.fixture(scope="module")
def kvol():
    return multicoil_volume()


def test_fastmri_multicoil(tmp_path, kvol):
    p = write_fastmri(tmp_path / "file1000.h5", kvol)
    src = open_kspace(p)
    assert isinstance(src, FastMRIFile) and src.format == "fastmri-multicoil"
    assert src.num_slices == 3 and src.shape == (4, 64, 48)
    np.testing.assert_array_equal(src.kspace(1), kvol[1])
    assert src.geometry.recon_size == (32, 32)
    assert src.geometry.voxel_size_mm == pytest.approx((0.5, 0.5, 3.0))
    assert src.target(0).shape == (32, 32)
    assert src.attrs["acquisition"] == "CORPD_FBK"
    assert src.mask() is None
    np.testing.assert_array_equal(src.sampling_pattern(), np.ones((1, 48), np.float32))
    assert src.encoding.padding == (0, 48)


def test_fastmri_singlecoil_and_test_file_mask(tmp_path, kvol):
    mask = np.zeros(48, np.float32)
    mask[::4] = 1
    mask[20:28] = 1
    p = write_fastmri(tmp_path / "sc.h5", kvol * mask, mask=mask, singlecoil=True)
    src = open_kspace(p)
    assert src.format == "fastmri-singlecoil" and src.shape == (1, 64, 48)
    np.testing.assert_array_equal(src.mask(), mask[None])
    assert src.target(2).shape == (32, 32)


def test_inferred_1d_and_2d_patterns(tmp_path, kvol):
    m1 = np.zeros(48, np.float32)
    m1[::3] = 1
    np.savez(tmp_path / "a.npz", kspace=kvol * m1)
    np.testing.assert_array_equal(open_kspace(tmp_path / "a.npz").sampling_pattern(), m1[None])
    m2 = (np.random.default_rng(0).random((64, 48)) > 0.5).astype(np.float32)
    np.savez(tmp_path / "b.npz", kspace=kvol[0] * m2)
    src = open_kspace(tmp_path / "b.npz")
    assert src.num_slices == 1
    np.testing.assert_array_equal(src.sampling_pattern(), m2)


def test_skmtea(tmp_path, kvol):
    p = write_skmtea(tmp_path / "MTR_005.h5", kvol)
    src = open_kspace(p, echo=1)
    assert isinstance(src, SKMTEAFile) and src.num_slices == 3 and src.shape == (4, 64, 48)
    np.testing.assert_allclose(src.kspace(2), kvol[2] * 0.7, rtol=1e-5, atol=1e-6)
    assert src.maps(0).shape == (4, 64, 48)
    assert src.target(0).shape == (64, 48)
    m = SKMTEAFile(p, mask_key="poisson_4x")
    assert m.mask().shape == (64, 48)
    assert np.all(m.kspace(0)[:, m.mask() == 0] == 0)
    with pytest.raises(InputFileError, match="masks: expected one of"):
        SKMTEAFile(p, mask_key="poisson_99x")
    with pytest.raises(InputFileError, match="echo"):
        SKMTEAFile(p, echo=5)


def test_bad_files(tmp_path, kvol):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(InputFileError, match="text.h5: file: expected a readable HDF5"):
        open_kspace(tmp_path / "text.h5")
    good = write_fastmri(tmp_path / "good.h5", kvol)
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(InputFileError, match="trunc.h5"):
        open_kspace(trunc).kspace(2)
    with h5py.File(tmp_path / "nokey.h5", "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(InputFileError, match="nokey.h5: kspace: expected an HDF5 dataset 'kspace'"):
        open_kspace(tmp_path / "nokey.h5")
    with h5py.File(tmp_path / "real.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(InputFileError, match="kspace: expected complex64 k-space, got dtype float32"):
        open_kspace(tmp_path / "real.h5")
    with h5py.File(tmp_path / "rank.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((8, 8), np.complex64))
    with pytest.raises(InputFileError, match="rank.h5: kspace: expected"):
        open_kspace(tmp_path / "rank.h5")
    with h5py.File(tmp_path / "zero.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 0, 8, 8), np.complex64))
    with pytest.raises(InputFileError, match="at least one slice and one coil"):
        open_kspace(tmp_path / "zero.h5")
    bad = kvol.copy()
    bad[1, 0, 3, 3] = np.nan
    src = open_kspace(write_fastmri(tmp_path / "nan.h5", bad))
    src.kspace(0)
    with pytest.raises(InputFileError, match="nan.h5: kspace slice 1: expected finite values, got NaN or Inf"):
        src.kspace(1)
    with pytest.raises(InputFileError, match=r"mask: expected shape \(48,\)"):
        open_kspace(write_fastmri(tmp_path / "badmask.h5", kvol, mask=np.ones(50, np.float32)))
    with pytest.raises(InputFileError, match="suffix '.mat'"):
        (tmp_path / "x.mat").write_bytes(b"0")
        open_kspace(tmp_path / "x.mat")
    with pytest.raises(InputFileError, match="no such file"):
        open_kspace(tmp_path / "missing.h5")


def test_npz_without_pickle(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    import zipfile

    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as z:
        z.write(tmp_path / "obj.npy", "kspace.npy")
    with pytest.raises(InputFileError, match="without pickled objects"):
        NpzKSpace(tmp_path / "obj.npz")


def test_ismrmrd_header_errors(tmp_path):
    with pytest.raises(InputFileError, match="ismrmrd_header: expected ISMRMRD XML"):
        parse_ismrmrd_header(tmp_path, b"<not xml")
    with pytest.raises(InputFileError, match="encoding/encodedSpace/matrixSize"):
        parse_ismrmrd_header(tmp_path, b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"/>')


def test_nifti_and_h5_roundtrip(tmp_path):
    import nibabel as nib

    vol = np.random.default_rng(0).random((3, 10, 12)).astype(np.float32)
    p = write_nifti(vol, tmp_path / "r.nii.gz", (0.5, 0.7, 3.0))
    img = nib.load(str(p))
    assert img.shape == (12, 10, 3)
    np.testing.assert_allclose(nib.affines.voxel_sizes(img.affine), (0.7, 0.5, 3.0))
    centre = img.affine @ np.array([5.5, 4.5, 1.0, 1.0])
    np.testing.assert_allclose(centre[:3], 0, atol=1e-6)
    np.testing.assert_array_equal(read_volume(p), vol)
    np.testing.assert_array_equal(read_volume(write_recon_h5(vol, tmp_path / "r.h5", attrs={"method": "cs"})), vol)
    with pytest.raises(InputFileError, match="missing folder"):
        write_volume(vol, tmp_path / "nope" / "r.nii.gz")
    with pytest.raises(InputFileError, match="output file type"):
        write_volume(vol, tmp_path / "r.png")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.h5", "r.nii.gz"]  # no temporaries left


def test_failed_write_leaves_nothing(tmp_path):
    from medrecon.atomic import atomic_output

    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "out.h5") as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_compressed_dicom_decodes_with_the_core_install():
    """JPEG 2000, JPEG lossless, JPEG baseline and RLE pixel data decode through the decoders medrecon installs."""
    import pydicom
    from pydicom.data import get_testdata_file

    from medrecon.datasets.ct_volume import read_ct

    for name, uncompressed in (
        ("MR_small_RLE.dcm", "MR_small.dcm"),
        ("JPEG2000.dcm", None),
        ("JPEG-LL.dcm", None),
        ("SC_rgb_jpeg_dcmtk.dcm", None),
    ):
        ds = pydicom.dcmread(get_testdata_file(name))
        assert ds.file_meta.TransferSyntaxUID.is_compressed and ds.pixel_array.size > 0
        if uncompressed:  # lossless: identical to the uncompressed file
            np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(get_testdata_file(uncompressed)).pixel_array)
    with pytest.raises(InputFileError, match="Modality"):  # the CT reader decodes it, then refuses an MR image by name
        read_ct(get_testdata_file("MR_small_RLE.dcm"))


_READ_ALL = """
import sys
from pathlib import Path
from medrecon.datasets.ct_volume import read_ct
from medrecon.datasets.image_io import read_volume
from medrecon.datasets.open_kspace import open_kspace
from medrecon.datasets.sinogram_io import read_sinogram
from medrecon.datasets.training_images import load_training_images
from medrecon.errors import InputFileError

d = Path(sys.argv[1])
for read, name in ((read_ct, "a.nii.gz"), (read_ct, "a.dcm"), (read_ct, "a"), (read_sinogram, "a.h5"), (open_kspace, "a.h5"),
                   (open_kspace, "a.npz"), (read_volume, "a.nii.gz"), (read_volume, "a.h5"), (load_training_images, "a.npz")):
    try:
        read([d / name]) if read is load_training_images else read(d / name)
        print("read", name)
    except InputFileError as err:
        print(err)
"""


def test_readers_refuse_named_pipes_at_once(tmp_path):
    """Every reader refuses a named pipe (FIFO) with one InputFileError instead of blocking on it forever."""
    import os
    import subprocess
    import sys

    for name in ("a.nii.gz", "a.dcm", "a", "a.h5", "a.npz"):
        os.mkfifo(tmp_path / name)
    r = subprocess.run([sys.executable, "-c", _READ_ALL, str(tmp_path)], capture_output=True, text=True, timeout=60)
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and len(lines) == 9, r.stdout + r.stderr
    assert all(": file: expected " in line and line.endswith("(a regular file), got a named pipe (FIFO)") for line in lines), lines


def test_check_regular_file(tmp_path):
    from medrecon.datasets.file_access import check_regular_file

    (tmp_path / "f.h5").write_bytes(b"x")
    assert check_regular_file(tmp_path / "f.h5") == tmp_path / "f.h5"
    with pytest.raises(InputFileError, match="got a folder"):
        check_regular_file(tmp_path)
    with pytest.raises(InputFileError, match="expected an existing sinogram, got no such file"):
        check_regular_file(tmp_path / "none.h5", "an existing sinogram")
    with pytest.raises(InputFileError, match="got a character device"):
        check_regular_file("/dev/null")
