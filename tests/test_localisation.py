"""Localisation metrics: boxes_to_masks, pointing_game and map_iou on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from skcxr.metrics import boxes_to_masks, map_iou, pointing_game


def _peaks(*positions, size=10):
    """Maps with one peak each (a low background elsewhere)."""
    maps = np.full((len(positions), size, size), 0.1)
    for k, (r, c) in enumerate(positions):
        maps[k, r, c] = 1.0
    return maps


def test_boxes_follow_the_pixel_centre_rule():
    mask = boxes_to_masks([[2, 3, 4, 2]], (8, 10))[0]
    assert mask.dtype == bool and mask.shape == (8, 10)
    np.testing.assert_array_equal(np.argwhere(mask.any(axis=1)).ravel(), [3, 4])  # rows y .. y + h - 1
    np.testing.assert_array_equal(np.argwhere(mask.any(axis=0)).ravel(), [2, 3, 4, 5])  # columns x .. x + w - 1
    # Fractional boxes: a pixel is in when its centre is; boxes past the border are clipped.
    assert boxes_to_masks([[1.4, 0, 1.2, 1]], (1, 4))[0].tolist() == [[False, True, True, False]]
    assert boxes_to_masks([[-5, -5, 7, 7]], (4, 4))[0].sum() == 4
    assert boxes_to_masks(np.empty((0, 4)), (3, 3)).shape == (0, 3, 3)


def test_boxes_scale_like_the_image():
    full = boxes_to_masks([[256, 512, 512, 256]], (1024, 1024))
    small = boxes_to_masks([[256, 512, 512, 256]], (8, 8), scale=8 / 1024)
    np.testing.assert_array_equal(small[0], full[0].reshape(8, 128, 8, 128).all(axis=(1, 3)))
    assert small.sum() == 4 * 2


@pytest.mark.parametrize("boxes, match", [([[1, 2, 3]], r"\(k, 4\)"), ([[0, 0, -1, 2]], ">= 0"),
                                          ([[0, 0, np.nan, 1]], "finite")])
def test_bad_boxes(boxes, match):
    with pytest.raises(ValueError, match=match):
        boxes_to_masks(boxes, (4, 4))


def test_pointing_game_hits_and_misses():
    maps = _peaks((2, 2), (8, 8), (5, 1))
    boxes = np.array([[1, 1, 3, 3]] * 3)  # rows and columns 1-3
    rate, hits = pointing_game(maps, boxes, return_hits=True)
    assert hits.tolist() == [True, False, False] and rate == pytest.approx(1 / 3)
    assert pointing_game(maps, boxes) == rate


def test_pointing_game_boxes_equal_masks():
    maps = np.random.default_rng(0).uniform(0, 1, (20, 16, 16))
    boxes = np.random.default_rng(1).uniform(0, 8, (20, 4))
    masks = np.stack([boxes_to_masks(b[None], (16, 16))[0] for b in boxes])
    for tolerance in (0, 2.5):
        a = pointing_game(maps, boxes, tolerance, return_hits=True)[1]
        b = pointing_game(maps, masks, tolerance, return_hits=True)[1]
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(map_iou(maps, boxes, 0.7), map_iou(maps, masks, 0.7))


def test_pointing_game_tolerance_is_euclidean_distance_in_pixels():
    target = np.zeros((1, 10, 10), dtype=bool)
    target[0, 2, 2] = True
    side = _peaks((2, 5))  # 3 px to the right
    diagonal = _peaks((5, 5))  # 3 * sqrt(2) = 4.24 px away
    assert [pointing_game(side, target, t) for t in (2.9, 3)] == [0.0, 1.0]
    assert [pointing_game(diagonal, target, t) for t in (4.2, 4.25)] == [0.0, 1.0]


def test_pointing_game_constant_maps_and_empty_targets_miss():
    maps = np.stack([np.zeros((6, 6)), np.full((6, 6), 0.7), _peaks((0, 0), size=6)[0]])
    targets = np.ones((3, 6, 6), dtype=bool)
    targets[2] = False
    assert pointing_game(maps, targets, tolerance=100, return_hits=True)[1].tolist() == [False, False, False]


def test_pointing_game_ties_take_the_first_peak():
    maps = np.zeros((1, 6, 6))
    maps[0, 1, 4] = maps[0, 4, 1] = 1  # row-major: (1, 4) comes first
    assert pointing_game(maps, [[4, 1, 1, 1]]) == 1.0
    assert pointing_game(maps, [[1, 4, 1, 1]]) == 0.0


def test_map_iou():
    maps = np.zeros((3, 4, 4))
    maps[0, :2] = 0.8  # top half
    maps[1] = 0.5  # everything, at exactly the threshold
    iou = map_iou(maps, [[0, 0, 4, 1], [0, 0, 2, 2], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou, [0.5, 4 / 16, np.nan])
    assert map_iou(maps, [[0, 0, 4, 1]] * 3, threshold=0.9).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("maps, targets, kwargs, match", [
    (np.zeros((2, 4)), np.zeros((2, 4)), {}, r"\(n, H, W\)"),
    (np.zeros((2, 4, 4)), np.zeros((3, 4, 4), bool), {}, "one box"),
    (np.zeros((2, 4, 4)), np.zeros((2, 5)), {}, "one box"),
    (np.full((1, 4, 4), np.nan), np.zeros((1, 4)), {}, "NaN"),
    (np.zeros((1, 4, 4)), np.zeros((1, 4)), {"tolerance": -1}, "tolerance"),
])
def test_bad_localisation_input(maps, targets, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pointing_game(maps, targets, **kwargs)
