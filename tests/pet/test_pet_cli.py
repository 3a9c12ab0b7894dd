"""``simulate pet`` / ``reconstruct pet`` end to end on generated PET/CT slices, and bad input."""

import h5py
import nibabel as nib
import numpy as np
import pytest

from medrecon.cli.main import main
from medrecon.datasets.image_io import write_nifti


def _phantom(n=48):
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    head = (xx**2 + yy**2) < (0.4 * n) ** 2
    act = np.where(head, 1.0, 0.0)
    act[(xx - 6) ** 2 + yy**2 < 16] = 4.0  # a hot lesion
    hu = np.where(head, 30.0, -1000.0)
    hu[head & ((xx**2 + yy**2) > (0.35 * n) ** 2)] = 900.0  # skull
    return act.astype(np.float32), hu.astype(np.float32)


@pytest.fixture(scope="module")
def pair_npz(tmp_path_factory):
    act, hu = _phantom()
    ct = np.repeat(np.kron((hu + 1024) / 2524, np.ones((2, 2)))[None], 3, 0)  # CT at twice the resolution, npz scale
    path = tmp_path_factory.mktemp("pet") / "pairs.npz"
    np.savez(path, pet_nac=np.stack([act, act * 1.1, act * 0.9]), ct=ct.astype(np.float32))
    return path


def _sim(tmp_path, src, *extra):
    out = tmp_path / "sino.h5"
    assert main(["simulate", "pet", "--input", str(src), "--views", "60", *extra, "--out", str(out)]) == 0
    return out


def test_simulate_and_reconstruct_recovers_activity(tmp_path, pair_npz):
    sino = _sim(tmp_path, pair_npz, "--slices", "0-1", "--counts", "2e7", "--background-fraction", "0.2", "--seed", "3")
    with h5py.File(sino) as f:
        assert f.attrs["modality"] == "PET" and f["sinogram"].shape == (2, 60, f["sinogram"].shape[2])
        assert float(f["sinogram"][()].sum()) == pytest.approx(2 * 2e7, rel=1e-2)
        assert float(f["multiplicative"][()].min()) < 0.5  # attenuation through the head
    act, _ = _phantom()
    for method, extra in (("osem", ["--iters", "10", "--fwhm", "0"]), ("mapem", ["--beta", "0.001"])):
        out = tmp_path / f"{method}.nii.gz"
        assert main(["reconstruct", "pet", str(sino), "--method", method, *extra, "--quiet", "--out", str(out)]) == 0
        rec = np.transpose(nib.load(out).get_fdata(), (2, 1, 0))
        head = act > 0
        for k, scale in enumerate((1.0, 1.1)):  # in the source's unit (calibration per slice)
            assert float(rec[k][head].mean()) == pytest.approx(float(act[head].mean()) * scale, rel=0.05)
            assert float(np.abs(rec[k] - act * scale)[head].mean()) < 0.25 * scale


def test_nifti_input_with_ct(tmp_path):
    act, hu = _phantom()
    pet, ct = tmp_path / "pet.nii.gz", tmp_path / "ct.nii.gz"
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    write_nifti(act[None], pet, affine=aff)
    ct_aff = np.diag([1.0, 1.0, 3.0, 1.0])
    ct_aff[:3, 3] = [-0.5, -0.5, 0.0]  # the same field of view on a 1 mm grid
    write_nifti(np.kron(hu, np.ones((2, 2)))[None], ct, affine=ct_aff)
    sino = _sim(tmp_path, pet, "--ct", str(ct), "--unit", "BQML", "--counts", "1e6")
    with h5py.File(sino) as f:
        guide = f["guide_hu"][0]
    assert float(np.mean(np.abs(guide - hu) < 50)) > 0.9  # the CT resampled onto the PET grid
    assert main(["simulate", "pet", "--input", str(pet), "--out", str(tmp_path / "x.h5")]) == 2  # no --ct


def test_bad_input(tmp_path, pair_npz, capsys):
    act, hu = _phantom()
    bad = tmp_path / "neg.npz"
    np.savez(bad, pet_nac=(act - 2)[None], ct=((hu + 1024) / 2524)[None])
    nan = tmp_path / "nan.npz"
    a = act.copy()
    a[3, 3] = np.nan
    np.savez(nan, pet_nac=a[None], ct=((hu + 1024) / 2524)[None])
    cases = [
        (["simulate", "pet", "--input", str(pair_npz), "--counts", "0", "--out", str(tmp_path / "a.h5")], "--counts"),
        (["simulate", "pet", "--input", str(bad), "--out", str(tmp_path / "b.h5")], "activity >= 0"),
        (["simulate", "pet", "--input", str(nan), "--out", str(tmp_path / "c.h5")], "finite"),
        (["simulate", "pet", "--input", str(pair_npz), "--slices", "7", "--out", str(tmp_path / "d.h5")], "slices"),
        (["simulate", "pet", "--input", str(pair_npz), "--out", str(pair_npz)], "input"),
    ]
    for argv, words in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
    sino = _sim(tmp_path, pair_npz, "--slices", "0", "--counts", "1e5")
    assert main(["reconstruct", "pet", str(sino), "--out", str(tmp_path / "d.nii.gz")]) == 0
    assert "10 mm FWHM" in capsys.readouterr().out  # the filter measured best at this count level
    for argv, words in (
        (["reconstruct", "pet", str(sino), "--subsets", "61", "--out", str(tmp_path / "o.nii.gz")], "--subsets"),
        (["reconstruct", "pet", str(sino), "--out", str(tmp_path / "o.h5")], ".nii"),
        (["reconstruct", "ct", str(sino), "--out", str(tmp_path / "o.nii.gz")], "PET sinogram"),
    ):
        assert main(argv) == 2, argv
        assert words in capsys.readouterr().err
    assert not any(p.name.startswith("o.") for p in tmp_path.iterdir())
    capsys.readouterr()


def test_dicom_series_in_and_out(tmp_path):
    """A PET DICOM series (Bq/ml) with a CT series → sinogram → OSEM → a derived PET series in Bq/ml."""
    from medrecon.datasets.ct_volume import write_dicom_series
    from medrecon.datasets.pet_dicom import read_pet, write_pet_dicom_series

    act, hu = _phantom()
    bqml = np.stack([act, act]) * 5000.0
    aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    aff[:3, 3] = [47.0, 47.0, 0.0]
    pet_dir = write_pet_dicom_series(bqml, aff, tmp_path / "pet", unit="BQML")
    ct_dir = write_dicom_series(np.stack([hu, hu]), aff, tmp_path / "ct")
    sino = _sim(tmp_path, pet_dir, "--ct", str(ct_dir), "--counts", "2e7")
    out = tmp_path / "recon"
    assert main(["reconstruct", "pet", str(sino), "--iters", "10", "--fwhm", "0", "--quiet", "--out", str(out) + "/"]) == 0
    rec = read_pet(out, "as-stored")
    assert rec.unit == "BQML" and rec.values.shape == (2, 48, 48)
    np.testing.assert_allclose(rec.affine, aff, atol=1e-4)
    head = act > 0
    assert float(rec.values[0][head].mean()) == pytest.approx(float(bqml[0][head].mean()), rel=0.05)
    # a normalised (npz) source cannot become a PET DICOM series: one line, nothing written
    npz = tmp_path / "p.npz"
    np.savez(npz, pet_nac=act[None], ct=((hu + 1024) / 2524)[None].astype(np.float32))
    sino2 = tmp_path / "s2.h5"
    assert main(["simulate", "pet", "--input", str(npz), "--views", "30", "--out", str(sino2)]) == 0
    assert main(["reconstruct", "pet", str(sino2), "--quiet", "--out", str(tmp_path / "r2") + "/"]) == 2
    assert not (tmp_path / "r2").exists()


def test_pet_series_reconstruction_joins_its_study_without_the_source(tmp_path):
    """The sinogram of a PET series carries the slices' headers: the reconstructed series keeps patient and study."""
    import shutil

    import pydicom

    from medrecon.datasets.pet_dicom import write_pet_dicom_series

    act, hu = _phantom()
    aff = np.diag([-2.0, -2.0, 3.0, 1.0])
    src = write_pet_dicom_series(np.stack([act * 1000.0, act * 1100.0]), aff, tmp_path / "pet", unit="BQML")
    for f in sorted(src.iterdir()):
        ds = pydicom.dcmread(f)
        ds.PatientID, ds.PatientName, ds.StudyInstanceUID = "PET-9", "Pet^Patient", "1.2.826.0.1.3680043.8.498.99"
        ds.save_as(f)
    source_sops = sorted(pydicom.dcmread(f).SOPInstanceUID for f in src.iterdir())
    write_nifti(np.stack([hu, hu]), tmp_path / "ct.nii.gz", affine=aff)
    sino = _sim(tmp_path, src, "--ct", str(tmp_path / "ct.nii.gz"), "--counts", "5e6")
    shutil.rmtree(src)
    out = tmp_path / "recon"
    assert main(["reconstruct", "pet", str(sino), "--method", "osem", "--iters", "2", "--quiet", "--out", str(out)]) == 0
    headers = [pydicom.dcmread(f) for f in sorted(out.iterdir())]
    assert {(str(d.PatientID), str(d.PatientName), d.StudyInstanceUID) for d in headers} == {
        ("PET-9", "Pet^Patient", "1.2.826.0.1.3680043.8.498.99")
    }
    assert sorted(d.SourceImageSequence[0].ReferencedSOPInstanceUID for d in headers) == source_sops
