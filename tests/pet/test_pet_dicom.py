"""PET DICOM series and NIfTI in and out, and the body-weight SUV conversion."""

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medrecon.datasets.pet_dicom import PET_IMAGE_STORAGE, read_pet, write_pet_dicom_series, write_pet_nifti
from medrecon.errors import ArgumentError, InputFileError

WEIGHT_KG, DOSE_BQ, HALF_LIFE_S = 70.0, 370e6, 6586.2
# injection 60 min before the series start, decay-corrected to the series start
FACTOR_START = WEIGHT_KG * 1000 / (DOSE_BQ * 2 ** (-3600 / HALF_LIFE_S))
FACTOR_ADMIN = WEIGHT_KG * 1000 / DOSE_BQ
SLOPES = (0.5, 1.25, 2.0, 1e-4)  # PET slopes differ per slice; the last slice holds small values
RNG = np.random.default_rng(0)
STORED = RNG.integers(0, 30000, (4, 16, 12)).astype(np.int16)
BQML = (STORED * np.asarray(SLOPES)[:, None, None]).astype(np.float32)
# voxel (col, row, slice) → RAS: 2 × 2.5 mm pixels, 3 mm slices; LPS origin (-50, -60, 10)
AFFINE = np.array([[-2.0, 0, 0, 50], [0, -2.5, 0, 60], [0, 0, 3, 10], [0, 0, 0, 1]])


def write_series(folder, *, drop=(), modality="PT", units="BQML", decay="START", **tags):
    """A synthetic 4-slice PET series (files in reverse slice order); ``drop`` removes tags."""
    folder.mkdir()
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for k in range(4):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = PET_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.SeriesNumber = "PET^Test", "P1", 3
        ds.Modality, ds.Units, ds.DecayCorrection = modality, units, decay
        ds.PatientWeight = WEIGHT_KG
        ds.SeriesDate, ds.SeriesTime = "20240102", "110000"
        t = 11 * 3600 + 30 * (3 - k)  # the last slice was acquired first, at 11:00:00
        ds.AcquisitionDate, ds.AcquisitionTime = "20240102", f"{t // 3600:02d}{t % 3600 // 60:02d}{t % 60:02d}"
        rp = Dataset()
        rp.RadionuclideTotalDose, rp.RadionuclideHalfLife = DOSE_BQ, HALF_LIFE_S
        rp.RadiopharmaceuticalStartTime = "100000"
        ds.RadiopharmaceuticalInformationSequence = Sequence([rp])
        ds.ImagePositionPatient = [-50.0, -60.0, 10.0 + 3 * k]
        ds.ImageOrientationPatient = [1.0, 0, 0, 0, 1.0, 0]
        ds.PixelSpacing = [2.5, 2.0]
        ds.Rows, ds.Columns = STORED.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = SLOPES[k], 0
        ds.PixelData = STORED[k].tobytes()
        for key, value in tags.items():
            target = rp if key.startswith("Radio") else ds
            if value is None:
                delattr(target, key)
            else:
                setattr(target, key, value)
        for key in drop:
            for target in (ds, rp):
                if key in target:
                    delattr(target, key)
        ds.save_as(folder / f"pet_{3 - k}.dcm", enforce_file_format=True)
    return folder


@pytest.fixture()
def series(tmp_path):
    return write_series(tmp_path / "pet")


def test_suv_start_decay_matches_the_formula(series):
    vol = read_pet(series)
    assert vol.unit == "SUVbw" and vol.suv_factor == pytest.approx(FACTOR_START, rel=1e-12)
    np.testing.assert_allclose(vol.values, BQML * FACTOR_START, rtol=1e-6)
    assert vol.values.dtype == np.float32 and vol.values.shape == (4, 16, 12)
    np.testing.assert_allclose(vol.affine, AFFINE, atol=1e-9)
    bq = read_pet(series, unit="BQML")
    assert bq.unit == "BQML" and bq.suv_factor == pytest.approx(FACTOR_START)
    np.testing.assert_array_equal(bq.values, BQML)  # per-slice slopes applied
    assert read_pet(series, unit="as-stored").unit == "BQML"


def test_suv_variants_of_the_time_tags(tmp_path):
    # no SeriesTime: the earliest AcquisitionTime (11:00:00) is the series start
    vol = read_pet(write_series(tmp_path / "acq", drop=("SeriesTime",)))
    assert vol.suv_factor == pytest.approx(FACTOR_START)
    # injection given as a date-time the evening before a series after midnight
    dt = write_series(
        tmp_path / "dt",
        SeriesDate="20240103",
        SeriesTime="003000",
        RadiopharmaceuticalStartTime=None,
        RadiopharmaceuticalStartDateTime="20240102233000",
    )
    assert read_pet(dt).suv_factor == pytest.approx(FACTOR_START)
    admin = read_pet(write_series(tmp_path / "admin", decay="ADMIN", drop=("RadionuclideHalfLife", "RadiopharmaceuticalStartTime")))
    assert admin.suv_factor == pytest.approx(FACTOR_ADMIN, rel=1e-12)
    np.testing.assert_allclose(admin.values, BQML * FACTOR_ADMIN, rtol=1e-6)
    gml = read_pet(write_series(tmp_path / "gml", units="GML", drop=("PatientWeight",)))
    assert gml.unit == "SUVbw" and gml.suv_factor is None
    np.testing.assert_array_equal(gml.values, BQML)


@pytest.mark.parametrize(
    "tag",
    [
        "Units",
        "PatientWeight",
        "RadiopharmaceuticalInformationSequence",
        "RadionuclideTotalDose",
        "RadionuclideHalfLife",
        "RadiopharmaceuticalStartTime",
        "DecayCorrection",
    ],
)
def test_each_missing_suv_tag_is_named(tmp_path, tag):
    folder = write_series(tmp_path / "pet", drop=(tag,))
    with pytest.raises(InputFileError, match=f"{tag}: expected present \\(needed for SUV\\), got missing") as err:
        read_pet(folder)
    assert err.value.path.startswith(str(folder)) and err.value.path.endswith(".dcm")
    assert "\n" not in str(err.value)
    bq = read_pet(folder, unit="BQML")  # activity needs none of them
    np.testing.assert_array_equal(bq.values, BQML)
    assert bq.suv_factor is None or tag == "Units"  # the factor does not depend on Units


def test_missing_series_time_and_acquisition_time(tmp_path):
    folder = write_series(tmp_path / "pet", drop=("SeriesTime", "AcquisitionTime"))
    with pytest.raises(InputFileError, match="SeriesTime: expected present"):
        read_pet(folder)


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"decay": "NONE"}, "DecayCorrection: expected START or ADMIN .*got NONE"),
        ({"PatientWeight": 0}, "PatientWeight: expected a positive weight"),
        ({"RadionuclideTotalDose": -1.0}, "RadionuclideTotalDose: expected a positive injected dose"),
        ({"RadiopharmaceuticalStartTime": "113000"}, "RadiopharmaceuticalStartTime: expected an injection before the series start"),
    ],
)
def test_suv_refusals(tmp_path, tags, match):
    folder = write_series(tmp_path / "pet", **tags)
    with pytest.raises(InputFileError, match=match):
        read_pet(folder)
    assert read_pet(folder, unit="BQML").suv_factor is None


def test_other_modality_and_units_are_refused(tmp_path):
    with pytest.raises(InputFileError, match="Modality: expected 'PT', got 'CT'"):
        read_pet(write_series(tmp_path / "ct", modality="CT"))
    counts = write_series(tmp_path / "cnts", units="CNTS")
    for unit in ("SUVbw", "BQML"):
        with pytest.raises(InputFileError, match="Units: expected BQML or GML .*got 'CNTS'"):
            read_pet(counts, unit=unit)
    with pytest.raises(ArgumentError, match="unit"):
        read_pet(tmp_path / "ct", unit="kBq/ml")


def test_single_file(series):
    vol = read_pet(series / "pet_3.dcm")  # the first slice
    assert vol.values.shape == (1, 16, 12)
    np.testing.assert_allclose(vol.values[0], BQML[0] * FACTOR_START, rtol=1e-6)


def test_series_roundtrip_keeps_values_geometry_unit_and_factor(series, tmp_path):
    vol = read_pet(series)
    out = write_pet_dicom_series(vol.values, vol.affine, tmp_path / "derived", reference=vol, unit="SUVbw")
    back = read_pet(out)
    assert back.unit == "SUVbw" and back.suv_factor == pytest.approx(vol.suv_factor, rel=1e-9)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    peak = np.abs(vol.values).max(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(back.values - vol.values) < 1e-3 * peak)  # int16 with a per-slice slope
    assert vol.values[3].max() < 0.01  # the small slice kept its precision too
    files = sorted(out.iterdir())
    d0, s0 = pydicom.dcmread(files[0]), pydicom.dcmread(series / "pet_3.dcm")
    assert d0.Modality == "PT" and d0.SOPClassUID == PET_IMAGE_STORAGE and list(d0.ImageType) == ["DERIVED", "SECONDARY"]
    assert d0.Units == "BQML" and d0.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert d0.SeriesInstanceUID != s0.SeriesInstanceUID and d0.StudyInstanceUID == s0.StudyInstanceUID
    assert d0.SourceImageSequence[0].ReferencedSOPInstanceUID == s0.SOPInstanceUID
    assert len({float(pydicom.dcmread(f).RescaleSlope) for f in files}) == 4
    # written in Bq/ml, it reads like the input
    bq = read_pet(out, unit="BQML")
    assert np.all(np.abs(bq.values - BQML) < 1e-3 * BQML.max(axis=(1, 2), keepdims=True))


def test_series_without_factor_is_written_as_gml(series, tmp_path):
    vol = read_pet(series)
    out = write_pet_dicom_series(vol.values, vol.affine, tmp_path / "gml", reference=None, unit="SUVbw")
    assert pydicom.dcmread(sorted(out.iterdir())[0]).Units == "GML"
    back = read_pet(out)
    assert back.unit == "SUVbw" and back.suv_factor is None
    assert np.all(np.abs(back.values - vol.values) < 1e-3 * np.abs(vol.values).max(axis=(1, 2), keepdims=True))
    with pytest.raises(InputFileError, match="PatientWeight"):
        read_pet(out, unit="BQML")
    with pytest.raises(ArgumentError, match="unit"):
        write_pet_dicom_series(vol.values, vol.affine, tmp_path / "x")


def test_nifti_roundtrip(series, tmp_path):
    vol = read_pet(series)
    path = write_pet_nifti(vol, None, tmp_path / "pet.nii.gz")
    assert nib.load(str(path)).header["descrip"].tobytes().startswith(b"medrecon PET unit=SUVbw")
    back = read_pet(path, unit="as-stored")
    assert back.unit == "SUVbw" and back.suv_factor is None
    np.testing.assert_array_equal(back.values, vol.values)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    assert read_pet(path).unit == "SUVbw"
    with pytest.raises(InputFileError, match="descrip: expected unit BQML"):
        read_pet(path, unit="BQML")
    plain = write_pet_nifti(BQML, AFFINE, tmp_path / "bq.nii", unit="BQML")
    np.testing.assert_array_equal(read_pet(plain, unit="as-stored").values, BQML)
    with pytest.raises(ArgumentError):
        write_pet_nifti(BQML, AFFINE, tmp_path / "none.nii")


def test_writer_refuses_non_empty_folder_and_leaves_nothing_on_failure(series, tmp_path, monkeypatch):
    vol = read_pet(series)
    with pytest.raises(InputFileError, match="non-empty"):
        write_pet_dicom_series(vol.values, vol.affine, series, reference=vol)
    calls = []

    def failing_save_as(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    original = Dataset.save_as
    monkeypatch.setattr(Dataset, "save_as", failing_save_as)
    with pytest.raises(OSError, match="disk full"):
        write_pet_dicom_series(vol.values, vol.affine, tmp_path / "derived", reference=vol)
    assert len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pet"]
    assert len(list(series.iterdir())) == 4
