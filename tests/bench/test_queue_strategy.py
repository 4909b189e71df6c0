"""``bench/queue_strategy.py``: how many labels random order needs to match a queue."""
from __future__ import annotations

import numpy as np
import pytest

from bench.queue_strategy import choose, labels_needed

KS = [4, 8, 16]
RANDOM_F1 = [0.40, 0.50, 0.60]


def test_labels_needed_interpolates_on_the_random_curve():
    assert labels_needed(KS, RANDOM_F1, 0.50) == pytest.approx(8.0)
    assert labels_needed(KS, RANDOM_F1, 0.55) == pytest.approx(12.0)
    assert labels_needed(KS, RANDOM_F1, 0.45) == pytest.approx(6.0)


def test_labels_needed_outside_the_curve():
    assert labels_needed(KS, RANDOM_F1, 0.61) is None  # random never gets there
    assert labels_needed(KS, RANDOM_F1, 0.30) == 4.0  # at or below the first K


def test_a_dip_in_the_random_curve_takes_the_first_crossing():
    assert labels_needed([4, 8, 16], [0.40, 0.38, 0.60], 0.49) == pytest.approx(12.0)


def test_random_order_never_repeats_a_face():
    pool = [(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8))] * 10
    rng = np.random.default_rng(0)
    taken: list[int] = []
    for n in (3, 3, 4):
        taken += choose("random", None, pool, taken, n, rng, "cpu")
    assert sorted(taken) == list(range(10))
