"""load_lung_masks on the real Montgomery/Shenzhen pairs and on small folders."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skcxr.datasets import lungs, load_lung_masks, read_mask


def test_real_montgomery_shenzhen_pairs(lungs_root):
    data = load_lung_masks(lungs_root)
    names = sorted(p.name for p in (lungs_root / "images").glob("*.png"))
    assert len(data.paths) == len(data.mask_paths) == 604
    assert [Path(p).name for p in data.paths] == names == [Path(p).name for p in data.mask_paths]
    assert all(Path(p).parent == lungs_root / "masks" for p in data.mask_paths)
    montgomery = np.array([n.startswith("MCUCXR_") for n in names])
    np.testing.assert_array_equal(data.source == "Montgomery", montgomery)
    np.testing.assert_array_equal(data.source == "Shenzhen", ~montgomery)
    np.testing.assert_array_equal(data.tuberculosis, [int(n[-5]) for n in names])
    assert data.tuberculosis.dtype == np.int8 and 0 < data.tuberculosis.sum() < 604


def test_real_masks_load_as_bool(lungs_root, tmp_path):
    data = load_lung_masks(lungs_root)
    pick = np.r_[0:3, -3:0]  # both sources, a few pairs: keep the test fast
    for sub, column in [("images", data.paths), ("masks", data.mask_paths)]:
        (tmp_path / sub).mkdir()
        for p in column[pick]:
            (tmp_path / sub / Path(p).name).symlink_to(p)
    small = load_lung_masks(tmp_path, load=True)
    assert small.images.shape == small.masks.shape == (6, 256, 256)
    assert small.images.dtype == np.float32 and small.masks.dtype == bool
    with Image.open(data.mask_paths[pick[0]]) as im:
        raw = np.asarray(im)
    assert set(np.unique(raw)) == {0, 255}
    np.testing.assert_array_equal(small.masks[0], raw == 255)
    lung_fraction = small.masks.mean(axis=(1, 2))
    assert ((lung_fraction > 0.1) & (lung_fraction < 0.6)).all()


def _pair_folder(tmp_path, images, masks, size=(8, 8), mask_size=None):
    for sub, names, shape in [("images", images, size), ("masks", masks, mask_size or size)]:
        (tmp_path / sub).mkdir(exist_ok=True)
        for name in names:
            Image.fromarray(np.full(shape, 255, np.uint8)).save(tmp_path / sub / name)
    return tmp_path


def test_unpaired_files_are_named(tmp_path):
    root = _pair_folder(tmp_path, ["a.png", "b.png", "c.png"], ["a.png", "b.png", "d.png"])
    with pytest.raises(ValueError, match=r"image\(s\) without a mask: c.png.*mask\(s\) without an image: d.png"):
        load_lung_masks(root)


def test_mask_suffix_other_names_and_sizes(tmp_path):
    root = _pair_folder(tmp_path, ["CHNCXR_0007_1.png", "other.png"], ["CHNCXR_0007_1_mask.png", "other.png"])
    data = load_lung_masks(root, load=True)
    assert data.source.tolist() == ["Shenzhen", "unknown"] and data.tuberculosis.tolist() == [1, -1]
    assert data.masks.all()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "other.png")
    with pytest.raises(ValueError, match="other.png"):
        load_lung_masks(root, load=True)
    (root / "masks" / "other.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="share the name 'other'"):
        load_lung_masks(root)
    with pytest.raises(FileNotFoundError, match="masks"):
        load_lung_masks(tmp_path / "nowhere")


def test_read_mask_threshold(tmp_path):
    path = tmp_path / "m.png"
    Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(path)
    assert read_mask(path).tolist() == [[False, False, True, True]]


def test_docstring_examples():
    result = doctest.testmod(lungs, raise_on_error=False)
    assert result.attempted > 0 and result.failed == 0  # the examples ran, and passed
