import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from conftest import shared_file
from pydicom.data import get_testdata_file

from medrecon.datasets.ct_volume import read_ct, write_ct_nifti, write_dicom_series
from medrecon.errors import InputFileError


def _oblique_affine():
    # LPS: rows along +x rotated 10° about z, 0.7 × 0.8 mm pixels, 2.5 mm slices
    a = np.deg2rad(10)
    r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    lps = np.eye(4)
    lps[:3, 0] = r @ [0.7, 0, 0]
    lps[:3, 1] = r @ [0, 0.8, 0]
    lps[:3, 2] = [0, 0, 2.5]
    lps[:3, 3] = [-100.0, -120.0, 30.0]
    return np.diag([-1.0, -1, 1, 1]) @ lps


@pytest.fixture()
def series(tmp_path):
    hu = np.round(np.random.default_rng(0).uniform(-1024, 2000, (5, 24, 20)))
    out = write_dicom_series(hu, _oblique_affine(), tmp_path / "series")
    return hu, out


def test_series_roundtrip_exact(series, tmp_path):
    hu, folder = series
    vol = read_ct(folder)
    np.testing.assert_array_equal(vol.hu, hu.astype(np.float32))
    np.testing.assert_allclose(vol.affine, _oblique_affine(), atol=1e-5)
    assert vol.spacing_mm == pytest.approx((2.5, 0.8, 0.7))
    # NIfTI written from it has nibabel geometry identical to the series
    nii = write_ct_nifti(vol, tmp_path / "v.nii.gz")
    img = nib.load(str(nii))
    np.testing.assert_allclose(img.affine, vol.affine, atol=1e-6)
    assert img.shape == (20, 24, 5)
    back = read_ct(nii)
    np.testing.assert_array_equal(back.hu, vol.hu)
    # derived series carries references, new UIDs, derived image type
    vol2 = write_dicom_series(vol.hu, vol.affine, tmp_path / "derived", vol.headers)
    files = sorted(vol2.iterdir())
    d0, s0 = pydicom.dcmread(files[0]), pydicom.dcmread(sorted(folder.iterdir())[0])
    assert list(d0.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
    assert d0.SeriesInstanceUID != s0.SeriesInstanceUID and d0.StudyInstanceUID == s0.StudyInstanceUID
    assert d0.FrameOfReferenceUID == s0.FrameOfReferenceUID
    assert d0.SourceImageSequence[0].ReferencedSOPInstanceUID == s0.SOPInstanceUID
    assert len({pydicom.dcmread(f).SOPInstanceUID for f in files}) == len(files)
    assert float(d0.SliceThickness) == float(d0.SpacingBetweenSlices) == pytest.approx(2.5)  # the source's, as written
    # overlapping source slices (3 mm thick every 2.5 mm): the derived slices keep the source's thickness
    for h in vol.headers:
        h.SliceThickness = 3.0
    d1 = pydicom.dcmread(sorted(write_dicom_series(vol.hu, vol.affine, tmp_path / "derived2", vol.headers).iterdir())[0])
    assert (float(d1.SliceThickness), float(d1.SpacingBetweenSlices)) == pytest.approx((3.0, 2.5))


def test_shuffled_files_are_sorted_by_position(series, tmp_path):
    hu, folder = series
    shuffled = tmp_path / "shuffled"
    shuffled.mkdir()
    for i, f in enumerate(sorted(folder.iterdir())):
        shutil.copy(f, shuffled / f"img_{(7 * i) % 5}.dcm")
    (shuffled / "README.txt").write_text("not dicom")
    np.testing.assert_array_equal(read_ct(shuffled).hu, hu.astype(np.float32))


def test_pydicom_ct_small_single_file():
    vol = read_ct(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert vol.hu.shape == (1, 128, 128)
    np.testing.assert_allclose(vol.hu[0], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    np.testing.assert_allclose(vol.affine[:3, 3], np.array(ds.ImagePositionPatient) * [-1, -1, 1])


def test_bad_series(series, tmp_path):
    hu, folder = series
    files = sorted(folder.iterdir())
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    with pytest.raises(InputFileError, match="DICOM: expected at least one DICOM image"):
        read_ct(empty)
    gap = tmp_path / "gap"
    shutil.copytree(folder, gap)
    (gap / files[2].name).unlink()
    with pytest.raises(InputFileError, match="1 missing slice"):
        read_ct(gap)
    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    other = write_dicom_series(hu[:2], _oblique_affine(), tmp_path / "other")
    for f in other.iterdir():
        shutil.copy(f, mixed / ("o_" + f.name))
    with pytest.raises(InputFileError, match="2 mixed"):
        read_ct(mixed)
    mr = tmp_path / "mr"
    shutil.copytree(folder, mr)
    ds = pydicom.dcmread(mr / files[0].name)
    ds.Modality = "MR"
    ds.save_as(mr / files[0].name)
    with pytest.raises(InputFileError, match="Modality: expected 'CT', got 'MR'"):
        read_ct(mr)
    uneven = tmp_path / "uneven"
    shutil.copytree(folder, uneven)
    ds = pydicom.dcmread(uneven / files[4].name)
    ds.ImagePositionPatient = [float(v) for v in np.array(ds.ImagePositionPatient) + [0, 0, 0.9]]
    ds.save_as(uneven / files[4].name)
    with pytest.raises(InputFileError, match="slice spacing: expected constant"):
        read_ct(uneven)
    with pytest.raises(InputFileError, match="non-empty"):
        write_dicom_series(hu, _oblique_affine(), folder)
    assert not any(p.name.endswith(".partial") for p in tmp_path.iterdir())


@pytest.mark.data
def test_real_abdominal_series():
    vol = read_ct(shared_file("ct/totalseg_abdomen_ct_dicom"))
    assert vol.hu.shape == (20, 512, 512)
    assert vol.spacing_mm == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert nib.aff2axcodes(vol.affine) == ("L", "P", "S")
    assert vol.hu.min() == -1024 and 1000 < vol.hu.max() < 3000
