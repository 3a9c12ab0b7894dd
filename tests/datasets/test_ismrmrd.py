"""ISMRMRD raw data in: small files built with the ismrmrd package, read back exactly, reconstructed by the CLI."""

import h5py
import numpy as np
import pytest
from mri_files import multicoil_volume

from medrecon.cli.main import main
from medrecon.datasets.fastmri import make_ismrmrd_header
from medrecon.datasets.open_kspace import open_kspace
from medrecon.errors import InputFileError

ismrmrd = pytest.importorskip("ismrmrd")


STUDY = (
    "<subjectInformation><patientName>Raw^Data</patientName><patientID>R-7</patientID>"
    "<patientBirthdate>1970-01-02</patientBirthdate></subjectInformation>"
    "<studyInformation><studyInstanceUID>1.2.826.0.1.3680043.8.498.777</studyInstanceUID>"
    "<studyDate>2026-11-30</studyDate></studyInformation>"
)
ORIGIN, READ, PHASE = np.array([10.0, -20.0, 30.0]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])


def write_ismrmrd(path, kspace, lines=None, extras=True, encoded_z=1, slice_gap=4.0):
    """Acquisitions of ``kspace`` (S, C, X, Y) for the phase-encode ``lines`` (all by default), plus a noise
    scan, a reversed readout and a repeated average, and lines of another contrast that must be ignored."""
    s, c, x, y = kspace.shape
    lines = range(y) if lines is None else lines
    dset = ismrmrd.Dataset(str(path), "/dataset", create_if_needed=True)
    xml = make_ismrmrd_header((x, y, encoded_z), (x // 2, y // 2, 1), (x * 0.5, y * 0.5, 4.0), y // 2, y).decode()
    dset.write_xml_header(xml.replace("<encoding>", STUDY + "<encoding>"))

    def add(data, sl, ky, **flags):
        acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data, dtype=np.complex64))
        acq.idx.slice, acq.idx.kspace_encode_step_1, acq.center_sample = sl, ky, x // 2
        acq.position[:] = ORIGIN + sl * slice_gap * np.cross(READ, PHASE)
        acq.read_dir[:], acq.phase_dir[:], acq.slice_dir[:] = READ, PHASE, np.cross(READ, PHASE)
        for name, value in flags.items():
            if name == "contrast":
                acq.idx.contrast = value
            else:
                acq.set_flag(getattr(ismrmrd, name))
        dset.append_acquisition(acq)

    if extras:
        add(np.full((c, x), 99.0), 0, 0, ACQ_IS_NOISE_MEASUREMENT=True)
    for sl in range(s):
        for ky in lines:
            if extras and ky == 3:
                add(kspace[sl, :, ::-1, ky], sl, ky, ACQ_IS_REVERSE=True)
            elif extras and ky == 5:  # two averages that average to the line
                add(kspace[sl, :, :, ky] * 1.5, sl, ky)
                add(kspace[sl, :, :, ky] * 0.5, sl, ky)
            else:
                add(kspace[sl, :, :, ky], sl, ky)
            if extras and ky == 1:
                add(np.full((c, x), 7.0), sl, ky, contrast=1)
    dset.close()
    return path


def test_ismrmrd_reads_back_the_kspace_it_was_written_with(tmp_path):
    k = multicoil_volume(slices=2, coils=4, h=32, w=24)
    src = open_kspace(write_ismrmrd(tmp_path / "meas.h5", k))
    assert src.format == "ismrmrd" and src.num_slices == 2 and src.shape == (4, 32, 24)
    assert src.geometry.recon_size == (16, 12) and src.geometry.voxel_size_mm == pytest.approx((1.0, 1.0, 4.0))
    for i in range(2):
        np.testing.assert_allclose(src.kspace(i), k[i], rtol=1e-6, atol=1e-6)
    assert src.attrs["ismrmrd_skipped_acquisitions"] == 1 and src.attrs["ismrmrd_ignored_contrast"] == 2


def test_ismrmrd_undersampled_file_reconstructs_through_the_cli(tmp_path):
    k = multicoil_volume(slices=2, coils=4, h=48, w=48)
    lines = sorted(set(range(0, 48, 3)) | set(range(20, 28)))  # 3x with a fully sampled centre
    meas = write_ismrmrd(tmp_path / "meas.h5", k, lines=lines, extras=False)
    src = open_kspace(meas)
    assert np.array_equal(np.flatnonzero(src.sampling_pattern(0)[0]), lines)
    out = tmp_path / "recon.h5"
    assert main(["reconstruct", "mri", str(meas), "--method", "sense", "--out", str(out), "--quiet"]) == 0
    with h5py.File(out) as f:
        assert f["reconstruction"].shape == (2, 24, 24) and f.attrs["source"] == "meas.h5"


def test_ismrmrd_bad_files_are_refused_with_one_line(tmp_path):
    k = multicoil_volume(slices=1, coils=2, h=16, w=16)
    with pytest.raises(InputFileError, match="a 2-D encoding"):
        open_kspace(write_ismrmrd(tmp_path / "3d.h5", k, extras=False, encoded_z=4))
    empty = ismrmrd.Dataset(str(tmp_path / "empty.h5"), "/dataset", create_if_needed=True)
    empty.write_xml_header(make_ismrmrd_header((16, 16, 1), (8, 8, 1), (8, 8, 4), 8, 16).decode())
    acq = ismrmrd.Acquisition.from_array(np.ones((2, 16), np.complex64))
    acq.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
    empty.append_acquisition(acq)
    empty.close()
    with pytest.raises(InputFileError, match="imaging acquisitions"):
        open_kspace(tmp_path / "empty.h5")


def test_ismrmrd_reconstruction_as_an_mr_dicom_series_in_its_study(tmp_path, capsys):
    import pydicom

    from medrecon.datasets.mr_volume import read_mr
    from medrecon.datasets.open_kspace import open_kspace as open_raw

    k = multicoil_volume(slices=3, coils=4, h=48, w=40)
    meas = write_ismrmrd(tmp_path / "meas.h5", k, extras=False)
    series, h5 = tmp_path / "series", tmp_path / "r.h5"
    for out in (series, h5):
        assert main(["reconstruct", "mri", str(meas), "--method", "sense", "--out", str(out), "--quiet"]) == 0
    ds = pydicom.dcmread(sorted(series.iterdir())[0])
    assert (str(ds.PatientID), str(ds.PatientName), ds.PatientBirthDate, ds.StudyDate) == ("R-7", "Raw^Data", "19700102", "20261130")
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.777" and ds.Modality == "MR" and "DERIVED" in ds.ImageType
    mr = read_mr(series)  # slices sorted along the image normal: here the reverse of the acquisition's order
    values, got = mr.values[::-1], mr.affine.copy()
    got[:3, 3] += got[:3, 2] * (values.shape[0] - 1)
    got[:3, 2] *= -1
    with h5py.File(h5) as f:
        ref = f["reconstruction"][()]
    assert values.shape == ref.shape
    np.testing.assert_allclose(values, ref, atol=float(ref.max()) / 30000)
    affine, _ = open_raw(meas).dicom_reference()
    np.testing.assert_allclose(got, affine, atol=1e-4)
    import shutil
    import subprocess

    if shutil.which("dcm2niix"):  # an independent reader agrees on the geometry
        import nibabel as nib

        conv = tmp_path / "conv"
        conv.mkdir()
        run = subprocess.run(["dcm2niix", "-z", "y", "-f", "mr", "-o", str(conv), str(series)], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr
        theirs = nib.as_closest_canonical(nib.load(conv / "mr.nii.gz"))
        ours = nib.as_closest_canonical(nib.Nifti1Image(np.transpose(mr.values, (2, 1, 0)), mr.affine))
        np.testing.assert_allclose(theirs.affine, ours.affine, atol=1e-3)
        np.testing.assert_allclose(theirs.get_fdata(), ours.get_fdata(), atol=float(ref.max()) / 30000)
    # pixel (0, 0) of slice 1 sits where the acquisition headers put it (patient LPS → RAS)
    centre = ORIGIN + 4.0 * np.cross(READ, PHASE) - READ * 1.0 * 12 - PHASE * 1.0 * 10
    np.testing.assert_allclose((got @ [0, 0, 1, 1])[:3], centre * [-1, -1, 1], atol=1e-4)


def test_dicom_output_needs_a_file_that_records_geometry(tmp_path, capsys):
    from conftest import assert_refused
    from mri_files import write_fastmri

    fm = write_fastmri(tmp_path / "fm.h5", multicoil_volume(slices=1, coils=2, h=32, w=32), recon_size=(16, 16))
    assert_refused(
        ["reconstruct", "mri", fm, "--method", "zf", "--out", tmp_path / "series"], capsys, "records none; write .h5 or .nii.gz", tmp_path
    )


def test_calibration_only_lines_fill_only_what_imaging_did_not_measure(tmp_path):
    k = multicoil_volume(slices=1, coils=2, h=16, w=16)
    dset = ismrmrd.Dataset(str(tmp_path / "grappa.h5"), "/dataset", create_if_needed=True)
    dset.write_xml_header(make_ismrmrd_header((16, 16, 1), (8, 8, 1), (8, 8, 4), 8, 16).decode())

    def add(data, ky, *flags):
        acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(data, dtype=np.complex64))
        acq.idx.kspace_encode_step_1, acq.center_sample = ky, 8
        for flag in flags:
            acq.set_flag(getattr(ismrmrd, flag))
        dset.append_acquisition(acq)

    for ky in range(0, 16, 2):  # imaging: every other line
        add(k[0, :, :, ky], ky)
    for ky in range(6, 11):  # a separate reference scan (another contrast: 3x) over the centre
        add(3 * k[0, :, :, ky], ky, "ACQ_IS_PARALLEL_CALIBRATION")
    dset.close()
    got = open_kspace(tmp_path / "grappa.h5").kspace(0)
    for ky in range(16):
        want = k[0, :, :, ky] if ky % 2 == 0 else (3 * k[0, :, :, ky] if 6 <= ky <= 10 else 0 * k[0, :, :, ky])
        np.testing.assert_allclose(got[:, :, ky], want, rtol=1e-6, atol=1e-6, err_msg=f"line {ky}")
