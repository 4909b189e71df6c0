"""The Review view's overlay: class colours on labelled pixels only."""
from __future__ import annotations

import numpy as np

from core.labels import CELEBAMASK
from webapp.ui import render


def test_overlay_tints_only_labelled_pixels():
    photo = np.full((4, 4, 3), 100, np.uint8)
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0] = 13
    shown = render.overlay(photo, labels, 1.0, CELEBAMASK)
    assert tuple(shown[0, 0]) == tuple(CELEBAMASK.palette[13]) and (shown[1:] == 100).all()
    assert np.array_equal(render.overlay(photo, labels, 0.0, CELEBAMASK), photo)
