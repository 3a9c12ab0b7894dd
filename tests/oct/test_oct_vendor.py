"""Vendor OCT files through oct-converter: files built here byte by byte in the published layouts
(Topcon .fds chunks with oct-converter's own structs, Zeiss .img raw cubes), read back exactly,
denoised end to end, written as TIFF / NIfTI / DICOM OPT; bad input refused."""

import struct

import nibabel as nib
import numpy as np
import pydicom
import pytest
import tifffile
from conftest import assert_refused
from oct_synthetic import clean_retina, speckled

from medrecon.cli.main import main
from medrecon.datasets import oct_vendor
from medrecon.datasets.oct_images import read_oct
from medrecon.errors import InputFileError, MissingDependencyError

pytest.importorskip("oct_converter")


def _stack(n=3, h=48, w=64, scale=1.0, dtype=np.uint8):
    clean = clean_retina(h, w)
    return np.stack([np.clip(speckled(clean, seed=s) * scale, 0, np.iinfo(dtype).max) for s in range(n)]).astype(dtype)


def _chunk(name: bytes, data: bytes) -> bytes:
    return bytes([len(name)]) + name + struct.pack("<I", len(data)) + data


def write_fds(path, bscans: np.ndarray, width_mm=6.0, depth_um=3.5) -> None:
    """A Topcon .fds file: header, @IMG_SCAN_03 (uint16 B-scans), @CAPTURE_INFO_02, @PARAM_SCAN_04."""
    from oct_converter.readers.binary_structs import fds_binary as fb

    n, h, w = bscans.shape
    head = fb.header.build(dict(file_code="FOCT", file_type="FDA", major_ver=1, minor_ver=0))
    scan = fb.oct_header.build(dict(scan_mode=2, width=w, height=h, bits_per_pixel=16, number_slices=n, format=0, size=n * h * w * 2))
    capture = fb.capture_info_02_header.build(dict(eye=1, scan_mode=2, session_id=1, label="", cap_date=[2024, 5, 6, 7, 8, 9]))
    params = fb.param_scan_04_header.build(
        dict(fixation=0, mirror_pos=0, polar=0, x_dimension_mm=width_mm, y_dimension_mm=width_mm, z_resolution_um=depth_um,
             comp_eff_2=0.0, comp_eff_3=0.0, base_pos=0, used_calib_data=0)
    )  # fmt: skip
    body = _chunk(b"@IMG_SCAN_03", scan + bscans.astype("<u2").tobytes())
    body += _chunk(b"@CAPTURE_INFO_02", capture) + _chunk(b"@PARAM_SCAN_04", params)
    path.write_bytes(head + body + b"\x00")


def write_zeiss(path, bscans: np.ndarray) -> None:
    """A Zeiss Cirrus .img cube: raw uint8, A-scans contiguous, B-scans one after the other."""
    path.write_bytes(np.ascontiguousarray(bscans.transpose(0, 2, 1)).astype(np.uint8).tobytes())


def test_topcon_fds_reads_exactly_with_spacing(tmp_path):
    bscans = _stack(dtype=np.uint16, scale=200.0)
    write_fds(tmp_path / "scan.fds", bscans)
    images = read_oct(tmp_path / "scan.fds")
    assert images.layout == "vendor" and images.files[0].dtype == np.uint16
    np.testing.assert_array_equal(images.bscans, bscans.astype(np.float32))
    across, between, depth = images.vendor.spacing
    assert across == pytest.approx(6.0 / 64) and between == pytest.approx(6.0 / 3) and depth == pytest.approx(0.0035)


def test_zeiss_img_cube_size_from_the_name(tmp_path):
    bscans = _stack(n=5, h=40, w=64)
    path = tmp_path / "P123_Macular Cube 64x5_5-6-2024_7-8-9_OD_sn1_cube_z.img"
    write_zeiss(path, bscans)
    images = read_oct(path)
    np.testing.assert_array_equal(images.bscans, bscans.astype(np.float32))
    assert images.files[0].dtype == np.uint8 and images.vendor.spacing is None
    write_zeiss(tmp_path / "cube.img", bscans)
    with pytest.raises(InputFileError, match="cube size in the name"):
        read_oct(tmp_path / "cube.img")
    (tmp_path / "odd 64x5.img").write_bytes(b"\x01" * 1001)
    with pytest.raises(InputFileError, match="file size"):
        read_oct(tmp_path / "odd 64x5.img")


@pytest.mark.parametrize("suffix", [".tif", ".nii.gz", ".dcm"])
def test_denoise_a_vendor_file_into_each_output(tmp_path, suffix):
    bscans = _stack(dtype=np.uint16, scale=200.0)
    write_fds(tmp_path / "scan.fds", bscans)
    out = tmp_path / f"den{suffix}"
    assert main(["denoise", "oct", str(tmp_path / "scan.fds"), "--method", "tv", "--out", str(out)]) == 0
    back = read_oct(out).bscans
    assert back.shape == bscans.shape
    assert np.abs(back - bscans).mean() > 0 and np.std(back) < np.std(bscans.astype(np.float32))  # smoother, not a copy
    if suffix == ".nii.gz":
        assert nib.load(out).header.get_zooms() == pytest.approx((6.0 / 64, 0.0035, 2.0))
    if suffix == ".dcm":
        ds = pydicom.dcmread(out)
        assert ds.Modality == "OPT" and ds.ImageType[0] == "DERIVED" and ds.Laterality == "L"
        assert "medrecon" in ds.SeriesDescription


def test_vendor_refusals(tmp_path, capsys, monkeypatch):
    bscans = _stack(n=2, h=40, w=64)
    zeiss = tmp_path / "Macular Cube 64x2.img"
    write_zeiss(zeiss, bscans)
    (tmp_path / "broken.e2e").write_bytes(b"not an e2e file at all" * 10)
    folder = tmp_path
    assert_refused(["denoise", "oct", zeiss, "--method", "tv", "--out", tmp_path / "o.nii.gz"], capsys, "pixel spacing", folder)
    assert_refused(["denoise", "oct", zeiss, "--method", "tv", "--out", tmp_path / "o.e2e"], capsys, ".tif / .nii.gz / .dcm", folder)
    assert_refused(["denoise", "oct", tmp_path / "broken.e2e", "--method", "tv", "--out", tmp_path / "o.tif"], capsys, "unreadable", folder)
    monkeypatch.setattr(oct_vendor, "_readers", lambda: None)
    with pytest.raises(MissingDependencyError, match="oct-vendor"):
        read_oct(zeiss)


def test_folder_of_vendor_files_writes_tiff_stacks(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    bscans = _stack(n=2, h=40, w=64)
    write_zeiss(src / "a 64x2.img", bscans)
    write_fds(src / "b.fds", bscans.astype(np.uint16))
    out = tmp_path / "out"
    assert main(["denoise", "oct", str(src), "--method", "tv", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a 64x2.tif", "b.tif"]
    assert tifffile.imread(out / "a 64x2.tif").dtype == np.uint8 and tifffile.imread(out / "b.tif").dtype == np.uint16
