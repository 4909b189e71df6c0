"""Choosing several faces to label at once: uncertain ones, but not near-duplicates."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.acquisition import layout_features, uncertain_and_diverse


def test_layout_features_say_which_class_is_where():
    probs = torch.zeros(1, 3, 8, 8)
    probs[0, 1, :, :4] = 1.0  # class 1 on the left half
    probs[0, 2, :, 4:] = 1.0  # class 2 on the right half
    feats = layout_features(probs, grid=2).reshape(3, 2, 2)
    assert feats.dtype == np.float32
    assert feats[1, :, 0].tolist() == [1.0, 1.0] and feats[1, :, 1].tolist() == [0.0, 0.0]
    assert feats[2, :, 1].tolist() == [1.0, 1.0] and feats[0].sum() == 0.0
    with pytest.raises(ValueError, match="N x C x S x S"):
        layout_features(torch.zeros(3, 8, 8))


def _faces():
    """Faces 0 and 1 are near-duplicates and the most uncertain; 2 is unlike them and a little
    less uncertain; 3 is unlike everything but sure."""
    scores = np.array([0.9, 0.89, 0.8, 0.1])
    feats = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [5.0, -5.0]], np.float32)
    return scores, feats


def test_the_first_pick_is_the_most_uncertain_and_the_next_is_not_its_twin():
    scores, feats = _faces()
    none = np.zeros((0, 2), np.float32)
    assert uncertain_and_diverse(scores, feats, none, 1) == [0]
    assert uncertain_and_diverse(scores, feats, none, 2) == [0, 2]  # not 0's twin, 1


def test_faces_like_labelled_ones_wait():
    scores, feats = _faces()
    known = feats[:1]  # a face just like 0 and 1 is already labelled
    assert uncertain_and_diverse(scores, feats, known, 1) == [2]


def test_only_the_uncertain_faces_are_candidates():
    scores, feats = _faces()
    picks = uncertain_and_diverse(scores, feats, np.zeros((0, 2)), 3, candidates=1.0)
    assert sorted(picks) == [0, 1, 2]  # face 3 is the most distinct but sure: not a candidate
    assert uncertain_and_diverse(scores, feats, np.zeros((0, 2)), 3, candidates=2.0) == [0, 2, 3]


def test_asking_for_more_than_there_are_returns_each_once():
    scores, feats = _faces()
    assert sorted(uncertain_and_diverse(scores, feats, np.zeros((0, 2)), 10)) == [0, 1, 2, 3]
    assert uncertain_and_diverse(scores, feats, np.zeros((0, 2)), 0) == []
    with pytest.raises(ValueError, match="4 scores for 3 feature rows"):
        uncertain_and_diverse(scores, feats[:3], np.zeros((0, 2)), 1)
