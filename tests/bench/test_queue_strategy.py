"""``bench/queue_strategy.py``: which faces each order takes, and how many labels random order
needs to match a queue."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import bench.queue_strategy as qs
from bench.queue_strategy import choose, labels_needed, report

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


class BrightnessPredictor:
    """Stands in for the parser (the edge: no weights): a face's uncertainty is its
    brightness, and its layout is its brightness spread over two classes."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def probabilities_small(self, images):
        level = torch.tensor([float(im.mean()) / 255 for im in images]).view(-1, 1, 1, 1)
        return torch.cat([level, 1 - level], dim=1).expand(-1, 2, 4, 4)

    def uncertainty_of(self, probs: torch.Tensor) -> float:
        return float(probs[0].mean())


@pytest.fixture
def pool():
    """Ten faces of brightness 0, 25, …, 225: the brighter, the more uncertain."""
    return [(np.full((4, 4, 3), 25 * i, np.uint8), np.zeros((4, 4), np.uint8)) for i in range(10)]


@pytest.mark.parametrize("order", qs.ORDERS)
def test_no_order_takes_a_face_twice(order, pool, monkeypatch):
    monkeypatch.setattr(qs, "Predictor", BrightnessPredictor)
    model = qs.Checkpoint(None, None, None, {})
    rng = np.random.default_rng(0)
    taken: list[int] = []
    for n in (3, 3, 4):
        taken += choose(order, model, pool, taken, n, rng, "cpu")
    assert sorted(taken) == list(range(10))


def test_the_uncertainty_order_takes_the_least_sure_faces_first(pool, monkeypatch):
    monkeypatch.setattr(qs, "Predictor", BrightnessPredictor)
    model = qs.Checkpoint(None, None, None, {})
    first = choose("uncertainty", model, pool, [], 3, None, "cpu")
    assert first == [9, 8, 7]
    assert choose("uncertainty", model, pool, first, 2, None, "cpu") == [6, 5]


def test_the_tables_come_back_from_the_saved_json(capsys):
    runs = {"random|4": [[0.40, 0.30, 1], [0.42, 0.32, 1]],
            "random|6": [[0.44, 0.33, 1], [0.44, 0.33, 2]],
            "random|8": [[0.50, 0.40, 2], [0.50, 0.40, 2]],
            "uncertainty|4": [[0.45, 0.50, 4], [0.43, 0.50, 4]],
            "uncertainty|6": [[0.52, 0.55, 6], [0.49, 0.50, 6]],
            "uncertainty|8": [[0.61, 0.60, 8], [0.60, 0.60, 8]]}
    data = {"title": "t", "settings": {"ks": [4, 6, 8], "seeds": [0, 1]},
            "orders": ["random", "uncertainty"], "start": [0.3, 0.2], "runs": runs}
    report(json.loads(json.dumps(data)), None)
    out = capsys.readouterr().out
    assert "| uncertainty | 4 | 44.00 ± 1.41 | 50.00 ± 0.00 | 4.0 | 6.0 | +33 % |" in out
    assert "| uncertainty | 8 | 60.50 ± 0.71 | 60.00 ± 0.00 | 8.0 | > 8 | ≥ +0 % |" in out
    assert "| uncertainty | 6 vs 8 | +2.00 / -1.00 | +0.50 | 1 of 2 |" in out
    assert "| uncertainty | 4 vs 6 | +1.00 / -1.00 | +0.00 | 1 of 2 |" in out
