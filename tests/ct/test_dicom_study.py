"""A reconstruction written as DICOM joins its patient's study, with the source's geometry, without the source files."""

import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medrecon.cli.main import main
from medrecon.datasets.ct_volume import write_dicom_series

IDS = {"PatientID": "P-0042", "PatientName": "Test^Patient", "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.4242", "AccessionNumber": "A77"}


def _source_series(folder):
    """A 3-slice CT series (5 mm slices every 4 mm, oblique-free) with patient and study identifiers."""
    yy, xx = np.mgrid[:48, :48] - 23.5
    sl = np.full((48, 48), -1000.0)
    sl[xx**2 + yy**2 < 20**2] = 40.0
    sl[(xx - 6) ** 2 + yy**2 < 5**2] = 700.0
    aff = np.diag([-1.2, -1.2, 4.0, 1.0])
    aff[:3, 3] = [30.0, 25.0, -60.0]
    write_dicom_series(np.stack([sl + 15 * k for k in range(3)]), aff, folder)
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        for k, v in IDS.items():
            setattr(ds, k, v)
        ds.SliceThickness = 5.0
        ds.save_as(f)
    return folder


def test_derived_series_stays_in_the_study_and_round_trips_through_dcm2niix(tmp_path, capsys):
    src = _source_series(tmp_path / "source")
    src_uids = [pydicom.dcmread(f).SOPInstanceUID for f in sorted(src.iterdir())]
    src_series = pydicom.dcmread(next(src.iterdir())).SeriesInstanceUID
    sino = tmp_path / "scan.h5"
    assert main(["simulate", "ct", "--input", str(src), "--views", "90", "--dose", "0", "--out", str(sino), "--quiet"]) == 0
    shutil.rmtree(src)  # the sinogram file carries what the DICOM output needs
    series, nifti = tmp_path / "recon", tmp_path / "recon.nii.gz"
    for out in (series, nifti):
        assert main(["reconstruct", "ct", str(sino), "--method", "fbp", "--out", str(out), "--quiet"]) == 0
    files = sorted(series.iterdir())
    headers = [pydicom.dcmread(f) for f in files]
    for ds in headers:
        for k, v in IDS.items():
            assert str(getattr(ds, k)) == v
        assert ds.SeriesInstanceUID != src_series and "DERIVED" in ds.ImageType
        assert float(ds.SliceThickness) == 5.0 and float(ds.SpacingBetweenSlices) == pytest.approx(4.0)
    assert len({ds.SeriesInstanceUID for ds in headers}) == 1
    refs = sorted(ds.SourceImageSequence[0].ReferencedSOPInstanceUID for ds in headers)
    assert refs == sorted(src_uids)
    dcm2niix = shutil.which("dcm2niix")
    if dcm2niix is None:
        pytest.skip("dcm2niix not installed (pip install dcm2niix)")
    conv = tmp_path / "dcm2niix"
    conv.mkdir()
    run = subprocess.run([dcm2niix, "-z", "y", "-f", "rt", "-o", str(conv), str(series)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    theirs = nib.as_closest_canonical(nib.load(conv / "rt.nii.gz"))
    ours = nib.as_closest_canonical(nib.load(nifti))
    np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)
    np.testing.assert_allclose(theirs.get_fdata(), ours.get_fdata(), atol=0.51)  # DICOM stores integer HU


def test_a_source_without_identifiers_is_named_and_written(tmp_path, capsys):
    src = _source_series(tmp_path / "source")
    for f in sorted(src.iterdir()):
        ds = pydicom.dcmread(f)
        del ds.PatientID
        ds.PatientName = ""
        ds.save_as(f)
    sino = tmp_path / "scan.h5"
    assert main(["simulate", "ct", "--input", str(src), "--views", "60", "--dose", "0", "--out", str(sino), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["reconstruct", "ct", str(sino), "--method", "fbp", "--out", str(tmp_path / "recon"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "no PatientID, PatientName" in err and "StudyInstanceUID" not in err
    assert str(pydicom.dcmread(next((tmp_path / "recon").iterdir())).StudyInstanceUID) == IDS["StudyInstanceUID"]


def test_a_long_description_is_cut_to_the_series_descriptions_limit(tmp_path):
    """SeriesDescription is an LO (64 characters); the derivation description (ST) keeps it whole."""
    label = "medrecon sCT from PET (ve_ode, 256 x 2000 steps, mirror views) std"
    folder = write_dicom_series(np.zeros((2, 8, 8)), np.diag([1.0, 1.0, 2.0, 1.0]), tmp_path / "s", description=label)
    h = pydicom.dcmread(sorted(folder.iterdir())[0])
    assert len(label) > 64 and h.SeriesDescription == label[:64] and h.DerivationDescription == label
