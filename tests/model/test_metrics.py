"""The evaluation protocol: one confusion matrix over the set, F1 = 2TP/(|GT|+|Pred|)."""
from __future__ import annotations

import numpy as np
import pytest

from core.labels import CELEBAMASK
from model.metrics import ConfusionMatrix


def test_f1_by_hand_and_absent_classes_are_none():
    gt = np.array([[1, 1, 2, 2]], np.uint8)
    pred = np.array([[1, 2, 2, 0]], np.uint8)
    cm = ConfusionMatrix()
    cm.update(pred, gt)
    f1 = cm.per_class_f1()
    assert f1["skin"] == pytest.approx(2 * 1 / (2 + 1))
    assert f1["nose"] == pytest.approx(2 * 1 / (2 + 2))
    assert f1["hair"] is None and f1["ear_r"] is None
    assert f1["background"] == 0.0
    assert cm.mean_f1() == pytest.approx((2 / 3 + 1 / 2) / 2)     # background and absent excluded
    assert cm.pixel_accuracy() == pytest.approx(0.5)


def test_counts_are_pooled_over_the_set_not_averaged_per_image():
    cm = ConfusionMatrix()
    cm.update(np.array([[2, 0, 0, 0]], np.uint8), np.array([[2, 0, 0, 0]], np.uint8))  # F1 1 alone
    cm.update(np.zeros((1, 4), np.uint8), np.array([[2, 2, 2, 0]], np.uint8))           # F1 0 alone
    assert cm.per_class_f1()["nose"] == pytest.approx(2 * 1 / (4 + 1))                # not 0.5
    assert cm.n_images == 2


def test_predicted_but_absent_class_counts_as_zero():
    cm = ConfusionMatrix()
    cm.update(np.array([[1, 3]], np.uint8), np.array([[1, 1]], np.uint8))
    assert cm.per_class_f1()["eye_g"] == 0.0
    assert cm.mean_f1() == pytest.approx((2 / 3 + 0.0) / 2)
    with pytest.raises(ValueError):
        cm.update(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    assert len(cm.per_class_f1()) == CELEBAMASK.num_classes
