"""Sizes declared by files, headers and arguments are checked against the memory budget before any allocation.

Every refusal is one line naming the file (or argument), the field, what it would need and what is
available; the command line exits 2 and writes nothing. The budget is set small with
``MEDRECON_MEMORY_LIMIT`` so the tests are cheap and do not depend on the machine.
"""

import io
import json
import zipfile

import h5py
import numpy as np
import pytest

from medrecon.cli.main import main
from medrecon.errors import ArgumentError, InputFileError
from medrecon.memory import ENV, check_allocation, format_size, memory_budget, parse_size


@pytest.fixture
def one_gib(monkeypatch):
    monkeypatch.setenv(ENV, "1GiB")


def _forged_npy(shape, dtype, version=(1, 0)) -> bytes:
    """An .npy whose header declares ``shape`` but which holds a few bytes of data."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    (np.lib.format.write_array_header_1_0 if version == (1, 0) else np.lib.format.write_array_header_2_0)(buf, header)
    return buf.getvalue() + b"\0" * 64


def _forged_npz(path, **members):
    with zipfile.ZipFile(path, "w") as z:
        for name, (shape, dtype, version) in members.items():
            z.writestr(name + ".npy", _forged_npy(shape, dtype, version))
    return path


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    return err


# -- the budget ------------------------------------------------------------------------------------
def test_parse_size_and_budget_from_the_environment(monkeypatch):
    assert parse_size("8GiB") == 8 * 2**30
    assert parse_size("500MB") == 500 * 10**6
    assert parse_size("1.5G") == int(1.5 * 2**30)
    assert parse_size("1048576") == 2**20
    assert parse_size(" 2 kib ") == 2048
    for bad in ("lots", "-1GiB", "0", "8 GiBs", ""):
        with pytest.raises(ArgumentError, match=ENV):
            parse_size(bad)
    monkeypatch.setenv(ENV, "500MB")
    assert memory_budget() == (500 * 10**6, f"allowed by {ENV}")
    monkeypatch.delenv(ENV)
    budget, how = memory_budget()
    assert how == "available" and budget > 0
    assert format_size(298 * 2**30) == "298 GiB" and format_size(21.3 * 2**30) == "21.3 GiB" and format_size(512) == "512 B"


def test_check_allocation_messages(one_gib, tmp_path):
    assert check_allocation(((100, 100), np.float64), tmp_path / "a.npz", "x", working=(np.float32,)) == 100 * 100 * 12
    with pytest.raises(InputFileError) as err:
        check_allocation(((200000, 200000), np.float64), tmp_path / "pet.npz", "pet_nac")
    assert str(err.value) == (
        f"{tmp_path / 'pet.npz'}: pet_nac: expected an array that fits in memory (≤ 1 GiB allowed by {ENV}), "
        "got shape (200000, 200000) float64 = 298 GiB"
    )
    with pytest.raises(ArgumentError, match=r"^views: expected a sinogram .* got shape \(9, 100000, 2000\) float32 \+ a float64 copy"):
        check_allocation(((9, 100000, 2000), np.float32), None, "views", working=(np.float64,), what="a sinogram")


# -- files -----------------------------------------------------------------------------------------
def test_forged_npz_headers_are_refused_before_loading(one_gib, tmp_path, capsys):
    from medrecon.datasets.npz_kspace import NpzKSpace
    from medrecon.datasets.pet_images import read_pet_ct_npz
    from medrecon.datasets.training_images import load_training_images

    pet = _forged_npz(tmp_path / "pet.npz", pet_nac=((200000, 200000), np.float64, (1, 0)), ct=((1, 4, 4), np.float32, (2, 0)))
    with pytest.raises(InputFileError, match=r"pet.npz: pet_nac: expected an array that fits in memory .* = 447 GiB"):
        read_pet_ct_npz(pet)
    k = _forged_npz(tmp_path / "k.npz", kspace=((8, 16, 60000, 60000), np.complex64, (2, 0)))
    with pytest.raises(InputFileError, match=r"k.npz: kspace: .*GiB"):
        NpzKSpace(k)
    imgs = _forged_npz(tmp_path / "t.npz", images=((100000, 4096, 4096), np.float32, (1, 0)))
    with pytest.raises(InputFileError, match=r"t.npz: images: .*GiB"):
        load_training_images([imgs])
    out = tmp_path / "sino.h5"
    assert main(["simulate", "pet", "--input", str(pet), "--out", str(out)]) == 2
    _one_line_error(capsys, "pet.npz: pet_nac:", "GiB")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["k.npz", "pet.npz", "t.npz"]


def test_huge_hdf5_datasets_are_refused_before_reading(one_gib, tmp_path, capsys):
    from medrecon.datasets.open_kspace import open_kspace
    from medrecon.datasets.sinogram_io import read_sinogram
    from medrecon.physics.ct.geometry import CTGeometry

    kpath = tmp_path / "k.h5"
    with h5py.File(kpath, "w") as f:  # declared, never written: chunked, a few kB on disk
        f.create_dataset("kspace", shape=(2, 16, 10**5, 10**5), dtype=np.complex64, chunks=(1, 1, 64, 64))
    with pytest.raises(InputFileError, match=r"k.h5: kspace: expected a k-space slice that fits in memory .*GiB"):
        open_kspace(kpath)
    geom = CTGeometry.create("parallel", (64, 64), (1.0, 1.0), 10**6, n_det=10**6)
    spath = tmp_path / "sino.h5"
    with h5py.File(spath, "w") as f:
        f.create_dataset("sinogram", shape=(4, 10**6, 10**6), dtype=np.float32, chunks=(1, 64, 64))
        f.attrs["geometry"] = geom.to_json()
    with pytest.raises(InputFileError, match=r"sino.h5: sinogram: expected an array that fits in memory .*GiB"):
        read_sinogram(spath)
    out = tmp_path / "rec.nii.gz"
    assert main(["reconstruct", "ct", str(spath), "--out", str(out)]) == 2
    _one_line_error(capsys, "sino.h5: sinogram:", "GiB")
    assert not out.exists()


def test_a_huge_image_geometry_is_refused(one_gib, tmp_path):
    from medrecon.datasets.sinogram_io import read_sinogram, write_sinogram
    from medrecon.physics.ct.geometry import CTGeometry

    geom = CTGeometry.create("parallel", (200000, 200000), (1.0, 1.0), 4, n_det=8)
    p = write_sinogram(tmp_path / "g.h5", np.zeros((1, 4, 8), np.float32), geom, np.eye(4), [0], {})
    with pytest.raises(InputFileError, match=r"g.h5: geometry: expected a reconstructed volume .* got shape \(1, 200000, 200000\) float32"):
        read_sinogram(p)


def test_a_huge_nifti_header_is_refused(one_gib, tmp_path):
    import nibabel as nib

    from medrecon.datasets.ct_volume import read_ct
    from medrecon.datasets.image_io import read_volume

    hdr = nib.Nifti2Header()  # NIfTI-2: 64-bit dims (NIfTI-1 stops at 32767)
    hdr.set_data_shape((60000, 60000, 100))
    hdr.set_data_dtype(np.int16)
    hdr["vox_offset"] = 544
    p = tmp_path / "big.nii"
    p.write_bytes(hdr.binaryblock + b"\0" * 4 + b"\0" * 64)  # header, no extension, hardly any data
    for read in (read_ct, read_volume):
        with pytest.raises(InputFileError, match=r"big.nii: dim: expected an image .* got shape \(60000, 60000, 100\) int16 \+ 2 float32"):
            read(p)


def test_huge_dicom_rows_and_columns_are_refused(one_gib, tmp_path):
    import pydicom

    from medrecon.datasets.ct_volume import read_ct, write_dicom_series

    folder = write_dicom_series(np.zeros((2, 8, 8)), np.diag([1.0, 1.0, 2.0, 1.0]), tmp_path / "series")
    for f in folder.iterdir():
        ds = pydicom.dcmread(f)
        ds.Rows, ds.Columns = 60000, 60000
        ds.save_as(f)
    with pytest.raises(InputFileError, match=r"series: Rows × Columns × files: .* got shape \(2, 60000, 60000\) float32 = 26.8 GiB"):
        read_ct(folder)


# -- arguments -------------------------------------------------------------------------------------
def test_simulate_ct_views_beyond_the_budget(one_gib, tmp_path, capsys):
    from medrecon.datasets.image_io import write_nifti

    vol = tmp_path / "ct.nii.gz"
    write_nifti(np.full((16, 256, 256), -1000.0, np.float32), vol)
    out = tmp_path / "sino.h5"
    assert main(["simulate", "ct", "--input", str(vol), "--views", "100000", "--quiet", "--out", str(out)]) == 2
    err = _one_line_error(capsys, "views: expected a sinogram that fits in memory", "GiB")
    assert "got shape (16, 100000, 365) float32 = 2.18 GiB" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]


# -- normal files still read -----------------------------------------------------------------------
def test_small_files_read_under_a_small_budget(monkeypatch, tmp_path):
    from mri_files import multicoil_volume, write_fastmri

    from medrecon.datasets.image_io import read_volume, write_nifti
    from medrecon.datasets.open_kspace import open_kspace
    from medrecon.datasets.pet_images import read_pet_ct_npz

    monkeypatch.setenv(ENV, "16MiB")
    np.savez(tmp_path / "p.npz", pet_nac=np.ones((2, 16, 16), np.float64), ct=np.full((2, 32, 32), 0.4, np.float32))
    assert read_pet_ct_npz(tmp_path / "p.npz").activity.shape == (2, 16, 16)
    k = multicoil_volume()
    src = open_kspace(write_fastmri(tmp_path / "k.h5", k))
    np.testing.assert_array_equal(src.kspace(0), k[0])
    np.savez(tmp_path / "k.npz", kspace=k)
    assert open_kspace(tmp_path / "k.npz").num_slices == 3
    vol = np.random.default_rng(0).random((3, 10, 12)).astype(np.float32)
    np.testing.assert_array_equal(read_volume(write_nifti(vol, tmp_path / "v.nii.gz")), vol)
    json.dumps(memory_budget())  # plain numbers and text
