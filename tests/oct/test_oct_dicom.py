"""DICOM Ophthalmic Tomography (OPT) B-scans: read, denoised, written back as a derived instance of the same study."""

import numpy as np
import pydicom
import pytest
from oct_synthetic import clean_retina, speckled
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medrecon.cli.main import main
from medrecon.datasets.oct_dicom import OPT_SOP_CLASS
from medrecon.datasets.oct_images import read_oct


def write_opt(path, frames: np.ndarray, modality="OPT", sop=OPT_SOP_CLASS, photometric="MONOCHROME2"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.Modality, ds.SeriesDescription = "P001", modality, "macular cube"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated = ds.BitsStored = 8 * frames.dtype.itemsize
    ds.HighBit, ds.PixelRepresentation = ds.BitsStored - 1, 0
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return ds


@pytest.fixture
def opt(tmp_path):
    frames = np.stack([speckled(clean_retina(64, 96), seed=k) for k in range(3)])
    path = tmp_path / "scan.dcm"
    return path, write_opt(path, frames), frames


def test_read_opt_frames_as_bscans(opt):
    path, _, frames = opt
    images = read_oct(path)
    assert images.bscans.shape == (3, 64, 96) and np.array_equal(images.bscans, frames.astype(np.float32))
    assert images.files[0].kind == "dicom" and images.files[0].dtype == np.uint8


def test_denoise_writes_a_derived_instance_of_the_same_study(opt, tmp_path):
    path, src, frames = opt
    out = tmp_path / "denoised.dcm"
    assert main(["denoise", "oct", str(path), "--method", "tv", "--out", str(out), "--quiet"]) == 0
    ds = pydicom.dcmread(out)
    assert ds.pixel_array.shape == frames.shape and ds.pixel_array.dtype == np.uint8
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.PatientID == "P001"
    assert ds.SOPInstanceUID != src.SOPInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and "medrecon" in ds.SeriesDescription
    assert np.std(ds.pixel_array.astype(float)) < np.std(frames.astype(float))  # smoother
    assert np.array_equal(pydicom.dcmread(path).pixel_array, frames)  # the input is untouched


@pytest.mark.parametrize(
    "kw, match",
    [(dict(modality="CT", sop="1.2.840.10008.5.1.4.1.1.2"), "Modality"), (dict(photometric="MONOCHROME1"), "MONOCHROME2")],
)
def test_refuses_other_dicom(tmp_path, capsys, kw, match):
    path = tmp_path / "other.dcm"
    write_opt(path, np.stack([speckled(clean_retina(32, 48))]), **kw)
    assert main(["denoise", "oct", str(path), "--out", str(tmp_path / "o.dcm")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and match in err, err
    assert not (tmp_path / "o.dcm").exists()
