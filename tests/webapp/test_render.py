"""Editor round trips: painted palette colours become exactly those class ids, nothing else moves."""
from __future__ import annotations

import numpy as np
import pytest

from core.labels import CELEBAMASK
from webapp.ui import render


def _stroke_layer(shape, ys, xs, class_id, alpha=255):
    layer = np.zeros(shape + (4,), np.uint8)
    layer[ys, xs, :3] = CELEBAMASK.palette[class_id]
    layer[ys, xs, 3] = alpha
    return layer


def test_strokes_round_trip_bit_exact_for_every_class():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 19, (40, 50), dtype=np.uint8)
    for class_id in range(CELEBAMASK.num_classes):
        layer = _stroke_layer(labels.shape, slice(5, 9), slice(10, 30), class_id)
        layer[20, 20] = (1, 2, 3, 0)          # erased / untouched pixels carry junk RGB at alpha 0
        layer[21, 21] = (9, 9, 9, 128)        # a translucent pixel is not a stroke
        out, changed = render.apply_strokes({"layers": [layer]}, labels, CELEBAMASK)
        expect = labels.copy()
        expect[5:9, 10:30] = class_id
        assert np.array_equal(out, expect) and changed == int((labels != expect).sum())


def test_a_colour_outside_the_palette_is_refused_and_names_the_pixel():
    labels = np.zeros((10, 10), np.uint8)
    layer = _stroke_layer(labels.shape, 3, 4, 1)
    layer[3, 4, :3] = (10, 20, 30)
    with pytest.raises(ValueError, match=r"\(x=0, y=0\)|not in the label palette"):
        render.apply_strokes({"layers": [layer]}, labels, CELEBAMASK)
    with pytest.raises(ValueError, match="reload the image"):
        render.apply_strokes({"layers": [np.zeros((5, 5, 4), np.uint8)]}, labels, CELEBAMASK)


def test_overlay_tints_only_labelled_pixels_and_masks_can_spare_other_classes():
    photo = np.full((4, 4, 3), 100, np.uint8)
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0] = 13
    shown = render.overlay(photo, labels, 1.0, CELEBAMASK)
    assert tuple(shown[0, 0]) == tuple(CELEBAMASK.palette[13]) and (shown[1:] == 100).all()
    assert np.array_equal(render.overlay(photo, labels, 0.0, CELEBAMASK), photo)
    mask = np.ones((4, 4), bool)
    assert (render.apply_mask(labels, mask, 1, keep_others=False) == 1).all()
    spared = render.apply_mask(labels, mask, 1, keep_others=True)
    assert spared[0, 0] == 13 and (spared.ravel()[1:] == 1).all()
