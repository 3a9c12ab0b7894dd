"""OCT B-scans in and out: TIFF / PNG / folders / NIfTI, the grey and bit-depth rules, refused inputs."""

import os

import nibabel as nib
import numpy as np
import pytest
import tifffile
from oct_synthetic import clean_retina, speckled
from PIL import Image

from medrecon.datasets.oct_images import read_oct
from medrecon.datasets.oct_output import check_oct_output, to_stored, write_oct
from medrecon.errors import InputFileError


@pytest.fixture
def bscan():
    return speckled(clean_retina(48, 64))


def test_tiff_round_trip_keeps_values_and_dtype(tmp_path, bscan):
    src = tmp_path / "b.tif"
    tifffile.imwrite(src, bscan, photometric="minisblack")
    im = read_oct(src)
    assert im.bscans.shape == (1, 48, 64) and im.bscans.dtype == np.float32 and im.notes == []
    np.testing.assert_array_equal(im.bscans[0], bscan)
    out = tmp_path / "o.tiff"
    write_oct(im, im.bscans + 0.4, check_oct_output(src, out))
    back = tifffile.imread(out)
    assert back.dtype == np.uint8 and back.shape == (48, 64)
    np.testing.assert_array_equal(back, bscan)  # +0.4 rounds away


def test_multipage_tiff_is_a_stack_written_back_as_pages(tmp_path, bscan):
    src = tmp_path / "stack.tif"
    stack = np.stack([bscan, bscan[::-1], 255 - bscan])
    tifffile.imwrite(src, stack, photometric="minisblack")
    im = read_oct(src)
    assert im.bscans.shape == (3, 48, 64)
    write_oct(im, im.bscans * 2, tmp_path / "o.tif")
    back = tifffile.imread(tmp_path / "o.tif")
    np.testing.assert_array_equal(back, np.clip(stack.astype(int) * 2, 0, 255))  # clipped to uint8


def test_png_8_and_16_bit(tmp_path, bscan):
    Image.fromarray(bscan).save(tmp_path / "a.png")
    im = read_oct(tmp_path / "a.png")
    np.testing.assert_array_equal(im.bscans[0], bscan)
    wide = bscan.astype(np.uint16) * 257
    Image.fromarray(wide).save(tmp_path / "w.png")
    im16 = read_oct(tmp_path / "w.png")
    assert im16.files[0].dtype == np.uint16 and any("uint16" in n and "8 bits are not assumed" in n for n in im16.notes)
    np.testing.assert_array_equal(im16.bscans[0], wide)
    write_oct(im16, im16.bscans, tmp_path / "w2.png")
    back = np.asarray(Image.open(tmp_path / "w2.png"))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, wide)


def test_colour_with_equal_channels_is_grey_with_a_note_and_other_colour_is_refused(tmp_path, bscan):
    Image.fromarray(np.stack([bscan] * 3, -1)).save(tmp_path / "rgb.png")
    im = read_oct(tmp_path / "rgb.png")
    assert im.bscans.shape == (1, 48, 64) and any("colour channels are equal" in n for n in im.notes)
    write_oct(im, im.bscans, tmp_path / "grey.png")
    assert Image.open(tmp_path / "grey.png").mode == "L"
    rgba = np.stack([bscan] * 3 + [np.full_like(bscan, 255)], -1)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    assert any("alpha" in n for n in read_oct(tmp_path / "rgba.tif").notes)
    colour = np.stack([bscan, bscan[::-1], bscan], -1)
    Image.fromarray(colour).save(tmp_path / "c.png")
    with pytest.raises(InputFileError, match="colour: expected grey B-scans"):
        read_oct(tmp_path / "c.png")
    tifffile.imwrite(tmp_path / "c.tif", colour, photometric="rgb")
    with pytest.raises(InputFileError, match="3 differing channels"):
        read_oct(tmp_path / "c.tif")


@pytest.mark.parametrize("value", [0, 17])
def test_constant_bscans_are_refused(tmp_path, bscan, value):
    tifffile.imwrite(tmp_path / "s.tif", np.stack([bscan, np.full_like(bscan, value)]), photometric="minisblack")
    with pytest.raises(InputFileError, match=f"B-scan 1: expected a B-scan with varying intensities, got every pixel {value}"):
        read_oct(tmp_path / "s.tif")


def test_refused_files(tmp_path, bscan):
    f = bscan.astype(np.float32)
    f[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", f)
    with pytest.raises(InputFileError, match="finite values"):
        read_oct(tmp_path / "nan.tif")
    os.mkfifo(tmp_path / "pipe.tif")
    with pytest.raises(InputFileError, match="named pipe"):
        read_oct(tmp_path / "pipe.tif")
    (tmp_path / "junk.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputFileError, match="unreadable"):
        read_oct(tmp_path / "junk.tif")
    with pytest.raises(InputFileError, match="no such file"):
        read_oct(tmp_path / "missing.tif")
    (tmp_path / "x.jpg").write_bytes(b"x")
    with pytest.raises(InputFileError, match="file type"):
        read_oct(tmp_path / "x.jpg")
    Image.fromarray(bscan > 100).save(tmp_path / "bw.png")
    with pytest.raises(InputFileError, match="1-bit"):
        read_oct(tmp_path / "bw.png")
    tifffile.imwrite(tmp_path / "white.tif", bscan, photometric="miniswhite")
    with pytest.raises(InputFileError, match="MINISWHITE"):
        read_oct(tmp_path / "white.tif")


def test_folder_in_and_out(tmp_path, bscan):
    src = tmp_path / "scans"
    src.mkdir()
    tifffile.imwrite(src / "b.tif", bscan, photometric="minisblack")
    Image.fromarray(bscan[::-1]).save(src / "a.png")
    (src / ".hidden.tif").write_bytes(b"ignored")
    (src / "notes.txt").write_text("ignored")
    im = read_oct(src)
    assert im.layout == "folder" and [f.name for f in im.files] == ["a.png", "b.tif"]
    np.testing.assert_array_equal(im.bscans[0], bscan[::-1])
    assert any("1 entries" in n for n in im.notes)
    out = check_oct_output(src, tmp_path / "out")
    write_oct(im, im.bscans, out)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.tif"]
    np.testing.assert_array_equal(tifffile.imread(out / "b.tif"), bscan)
    Image.fromarray(bscan[:40]).save(src / "c.png")
    with pytest.raises(InputFileError, match="B-scan size: expected"):
        read_oct(src)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match="folder: expected a folder with"):
        read_oct(empty)


def _nifti(path, data, zooms, dtype=np.uint8):
    img = nib.Nifti1Image(data.astype(dtype), np.diag([*zooms, 1.0]))
    img.header.set_zooms(zooms)
    nib.save(img, str(path))


def test_nifti_bscan_axis_rule_and_round_trip(tmp_path, bscan):
    stack = np.stack([bscan, 255 - bscan, bscan[::-1]])  # (N, H, W)
    # voxel axes (i, j, k) = (N, W, H): B-scans along i, rows (depth) along k, columns along j
    vol = np.transpose(stack, (0, 2, 1))
    _nifti(tmp_path / "v.nii.gz", vol, (0.12, 0.011, 0.004))
    im = read_oct(tmp_path / "v.nii.gz")
    assert im.nifti[1] == 0
    np.testing.assert_array_equal(im.bscans, stack)
    write_oct(im, im.bscans + 1, check_oct_output(tmp_path / "v.nii.gz", tmp_path / "o.nii"))
    back = nib.load(tmp_path / "o.nii")
    assert back.get_data_dtype() == np.uint8 and back.header.get_zooms() == pytest.approx((0.12, 0.011, 0.004))
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.clip(vol.astype(int) + 1, 0, 255))
    _nifti(tmp_path / "iso.nii.gz", vol, (1.0, 1.0, 1.0))
    with pytest.raises(InputFileError, match="B-scan axis: expected one voxel spacing"):
        read_oct(tmp_path / "iso.nii.gz")
    np.testing.assert_array_equal(read_oct(tmp_path / "iso.nii.gz", bscan_axis=0).bscans, stack)
    tifffile.imwrite(tmp_path / "t.tif", bscan)
    with pytest.raises(InputFileError, match="only with a NIfTI"):
        read_oct(tmp_path / "t.tif", bscan_axis=0)


def test_output_checks(tmp_path, bscan):
    src = tmp_path / "b.tif"
    tifffile.imwrite(src, bscan)
    with pytest.raises(InputFileError, match="the input's format"):
        check_oct_output(src, tmp_path / "o.png")
    (tmp_path / "d").mkdir()
    with pytest.raises(InputFileError, match="got a folder"):
        check_oct_output(src, tmp_path / "d")
    with pytest.raises(InputFileError, match="missing folder"):
        check_oct_output(src, tmp_path / "nope" / "o.tif")
    (tmp_path / "d" / "x").write_text("")
    with pytest.raises(InputFileError, match="non-empty folder"):
        check_oct_output(tmp_path / "d", tmp_path / "d")


def test_to_stored_rounds_and_clips():
    v = np.array([-3.2, 0.4, 0.6, 254.6, 300.0])
    np.testing.assert_array_equal(to_stored(v, np.uint8), [0, 0, 1, 255, 255])
    np.testing.assert_array_equal(to_stored(v, np.int16), [-3, 0, 1, 255, 300])
    assert to_stored(v, np.float32).dtype == np.float32
