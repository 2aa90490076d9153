"""read_image: every PNG/JPEG/DICOM flavour becomes a 2-D float32 array in [0, 1]."""

from __future__ import annotations

import doctest
import re
import sys

import numpy as np
import pytest
from PIL import Image

from skcxr.datasets import io as skio
from skcxr.datasets import read_image

RNG = np.random.default_rng(0)


def _save(tmp_path, image: Image.Image, name: str, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


def _check(a, shape):
    assert isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == shape
    assert 0.0 <= a.min() and a.max() <= 1.0


def test_8bit_gray_png_is_value_over_255(tmp_path):
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    a = read_image(_save(tmp_path, Image.fromarray(gray), "g.png"))
    _check(a, (16, 16))
    np.testing.assert_array_equal(a, gray.astype(np.float32) / np.float32(255))
    assert a[0, 0] == 0.0 and a[-1, -1] == 1.0


def test_16bit_png_is_value_over_65535(tmp_path):
    values = np.concatenate([[0, 1, 255, 256, 65534, 65535], RNG.integers(0, 65536, 58)])
    data = values.astype(np.uint16).reshape(8, 8)
    path = _save(tmp_path, Image.fromarray(data), "g16.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
    a = read_image(path)
    _check(a, (8, 8))
    np.testing.assert_array_equal(a, (data / 65535.0).astype(np.float32))  # correctly rounded ratio


def test_mode_I_and_F(tmp_path):
    fits = np.array([[0, 1000], [30000, 65535]], dtype=np.int32)
    a = read_image(_save(tmp_path, Image.fromarray(fits), "i.tif"))
    np.testing.assert_allclose(a, fits / 65535.0, rtol=1e-6)
    wide = np.array([[-500, 0], [500, 1500]], dtype=np.int32)  # not 16-bit: min-max
    np.testing.assert_allclose(read_image(_save(tmp_path, Image.fromarray(wide), "w.tif")),
                               [[0, 0.25], [0.5, 1]], rtol=1e-6)
    f = np.array([[-1.0, 0.0], [1.0, 3.0]], dtype=np.float32)
    np.testing.assert_allclose(read_image(_save(tmp_path, Image.fromarray(f), "f.tif")),
                               [[0, 0.25], [0.5, 1]], rtol=1e-6)
    const = np.full((3, 3), 7.0, dtype=np.float32)
    np.testing.assert_array_equal(read_image(_save(tmp_path, Image.fromarray(const), "c.tif")), 0)


def test_alpha_is_dropped_la_and_rgba(tmp_path):
    gray = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (12, 10), dtype=np.uint8)
    expected = gray / np.float32(255)
    la = Image.merge("LA", [Image.fromarray(gray), Image.fromarray(alpha)])
    rgba = Image.fromarray(np.dstack([gray, gray, gray, alpha]))
    assert rgba.mode == "RGBA"
    for image, name in [(la, "la.png"), (rgba, "rgba.png")]:
        a = read_image(_save(tmp_path, image, name))
        _check(a, (12, 10))
        np.testing.assert_array_equal(a, expected.astype(np.float32))


def test_colour_becomes_luminance(tmp_path):
    rgb = np.zeros((3, 1, 3), dtype=np.uint8)
    rgb[0, 0, 0] = rgb[1, 0, 1] = rgb[2, 0, 2] = 255  # pure red, green, blue
    a = read_image(_save(tmp_path, Image.fromarray(rgb), "rgb.png"))
    _check(a, (3, 1))
    np.testing.assert_allclose(a[:, 0], [0.299, 0.587, 0.114], atol=1 / 255)


def test_palette_png(tmp_path):
    index = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    image = Image.fromarray(index, mode="P")
    palette = [0, 0, 0, 100, 100, 100, 255, 255, 255, 255, 0, 0]  # 3 grays and red
    image.putpalette(palette + [0] * (768 - len(palette)))
    path = _save(tmp_path, image, "p.png")
    with Image.open(path) as im:
        assert im.mode == "P"
    a = read_image(path)
    _check(a, (2, 2))
    np.testing.assert_allclose(a, [[0, 100 / 255], [1, 0.299]], atol=1 / 255)


def test_jpeg_gray_and_colour(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)
    a = read_image(_save(tmp_path, Image.fromarray(ramp), "g.jpg", quality=95))
    _check(a, (48, 64))
    np.testing.assert_allclose(a, ramp / 255, atol=0.03)
    b = read_image(_save(tmp_path, Image.fromarray(np.dstack([ramp] * 3)), "c.jpeg", quality=95))
    _check(b, (48, 64))
    np.testing.assert_allclose(b, ramp / 255, atol=0.03)


def test_real_nih_images_including_rgba(nih_root, nih64_root):
    paths = sorted((nih_root / "images").glob("*.png"))
    modes = {}
    for p in paths:
        with Image.open(p) as im:
            modes[p] = (im.mode, im.size)
    rgba = [p for p, (mode, _) in modes.items() if mode == "RGBA"]
    assert rgba, "the shared NIH images are documented to include RGBA files"
    big = [p for p, (_, size) in modes.items() if size == (1024, 1024)]
    for p in rgba + big[:1]:
        a = read_image(p)
        _check(a, modes[p][1][::-1])
        with Image.open(p) as im:
            channel = np.asarray(im)[..., 0] if im.mode == "RGBA" else np.asarray(im)
        np.testing.assert_array_equal(a, channel / np.float32(255))  # equal channels: exact
    small = sorted((nih64_root / "images").glob("*.png"))[0]
    _check(read_image(small), (64, 64))


# --- DICOM -----------------------------------------------------------------------------


def _write_dicom(path, pixels, photometric="MONOCHROME2", preamble=True, **elements):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    ds.save_as(path, enforce_file_format=preamble)
    assert pydicom.dcmread(path).PhotometricInterpretation == photometric
    return path


PIXELS = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
MINMAX = PIXELS / 4000.0


def test_dicom_monochrome2_minmax_and_monochrome1_inverted(tmp_path):
    a = read_image(_write_dicom(tmp_path / "m2.dcm", PIXELS))
    _check(a, (2, 2))
    np.testing.assert_allclose(a, MINMAX, atol=1e-6)
    b = read_image(_write_dicom(tmp_path / "m1.dcm", PIXELS, "MONOCHROME1"))
    np.testing.assert_allclose(b, 1 - MINMAX, atol=1e-6)


def test_dicom_rescale_slope_intercept(tmp_path):
    # Negative slope flips the stored values: visible even through min-max.
    a = read_image(_write_dicom(tmp_path / "neg.dcm", PIXELS, RescaleSlope=-2, RescaleIntercept=100))
    np.testing.assert_allclose(a, 1 - MINMAX, atol=1e-6)
    # With a window (in rescaled units) slope and intercept decide every value.
    path = _write_dicom(tmp_path / "win.dcm", PIXELS, RescaleSlope=0.5, RescaleIntercept=-1000,
                        WindowCenter=0, WindowWidth=2001)
    rescaled = PIXELS * 0.5 - 1000  # -1000, -500, 0, 1000
    expected = np.clip((rescaled + 0.5) / 2000 + 0.5, 0, 1)  # DICOM linear window, c=0, w=2001
    np.testing.assert_allclose(read_image(path), expected, atol=1e-6)
    assert not np.allclose(expected, np.clip((PIXELS + 0.5) / 2000 + 0.5, 0, 1))  # rescale matters


def test_dicom_without_suffix_is_found_by_signature(tmp_path):
    a = read_image(_write_dicom(tmp_path / "IM0001", PIXELS))
    np.testing.assert_allclose(a, MINMAX, atol=1e-6)


def test_dicom_needs_pydicom_extra(tmp_path, monkeypatch):
    path = _write_dicom(tmp_path / "x.dcm", PIXELS)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"skcxr\[dicom\]") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_corrupt_dicom(tmp_path):
    pytest.importorskip("pydicom")
    path = tmp_path / "bad.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 10)
    with pytest.raises(ValueError, match="bad.dcm"):
        read_image(path)


# --- bad files ---------------------------------------------------------------------------


def test_truncated_and_non_image_files(tmp_path, nih_root):
    real = sorted((nih_root / "images").glob("*.png"))[0].read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(real[: len(real) * 6 // 10])
    with pytest.raises(ValueError, match="truncated.png"):
        read_image(truncated)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        read_image(text)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.jpg"):
        read_image(empty)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_image(tmp_path / "nowhere.png")
    with pytest.raises(IsADirectoryError):
        read_image(tmp_path)


def test_docstring_examples():
    result = doctest.testmod(skio, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0  # the examples ran, and passed


# --- errors the command line reports as one line: they must reach it with their own type ----------


def test_decompression_bomb_is_pillows_error_not_a_corrupt_file(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.fromarray(np.zeros((32, 32), np.uint8)), "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1024 pixels > 2 * 100: refused by Pillow
    with pytest.raises(Image.DecompressionBombError):
        read_image(path)


def test_decompression_bomb_names_the_file_in_the_library(tmp_path, monkeypatch):
    from skcxr.preprocessing import CXRPreprocessor

    path = _save(tmp_path, Image.fromarray(np.zeros((32, 32), np.uint8)), "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    match = rf"^Cannot read {re.escape(repr(str(path)))}: Image size \(1024 pixels\).*MAX_IMAGE_PIXELS[^\n]*$"
    with pytest.raises(Image.DecompressionBombError, match=match) as err:
        read_image(path)
    assert isinstance(err.value.__cause__, Image.DecompressionBombError)  # Pillow's own error, chained
    with pytest.raises(Image.DecompressionBombError, match="huge.png"):  # what predict and explain call
        CXRPreprocessor(size=16, n_jobs=1).transform([str(path)])


def test_any_decoder_error_names_the_file(tmp_path, monkeypatch):
    import struct

    path = _save(tmp_path, Image.fromarray(np.zeros((4, 4), np.uint8)), "odd.png")

    def malformed(fp, *args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")  # as Pillow's plugins do on bad headers

    monkeypatch.setattr(Image, "open", malformed)
    match = r"^Cannot read '.*odd\.png': corrupt or truncated image \(unpack requires"
    with pytest.raises(ValueError, match=match) as err:
        read_image(path)
    assert isinstance(err.value.__cause__, struct.error)


def test_permission_error_passes_through(tmp_path, monkeypatch):
    path = _save(tmp_path, Image.fromarray(np.zeros((4, 4), np.uint8)), "locked.png")

    def deny(fp, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(fp))

    monkeypatch.setattr(Image, "open", deny)
    with pytest.raises(PermissionError, match="locked.png"):
        read_image(path)
