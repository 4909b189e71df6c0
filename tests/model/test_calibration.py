"""Predictions undo the class weights of the run that trained the model (logit adjustment)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core.labels import CELEBAMASK
from model.calibration import LOGIT_ADJUSTMENT, best_strength, class_logit_bias, recorded_strength
from model.inference import Predictor
from model.net import ParserConfig

NECKLACE = CELEBAMASK.id("neck_l")
WEIGHTED_RUN = {"loss": {"class_weights": {"ear_r": 20.0, "neck_l": 20.0}}}


class LeansToNecklace(nn.Module):
    """Logits 1.0 for the necklace, 0.5 for the background and 0 elsewhere at every pixel: what
    a model trained with the necklace weighted 20 outputs where it is not sure."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.zeros(x.shape[0], CELEBAMASK.num_classes, *x.shape[-2:], device=x.device)
        logits[:, 0], logits[:, NECKLACE] = 0.5, 1.0
        return {"logits": logits}


def predicted(meta: dict, **kwargs) -> np.ndarray:
    predictor = Predictor(LeansToNecklace(), ParserConfig.small(input_size=32), CELEBAMASK, meta,
                          **kwargs)
    return predictor.predict(np.zeros((20, 24, 3), np.uint8))[0]


def test_the_bias_takes_a_share_of_the_log_weight_off_each_weighted_class():
    bias = class_logit_bias(WEIGHTED_RUN, CELEBAMASK)
    assert bias.shape == (CELEBAMASK.num_classes,)
    expected = -LOGIT_ADJUSTMENT * math.log(20.0)
    assert bias[NECKLACE].item() == pytest.approx(expected)
    assert bias[CELEBAMASK.id("ear_r")].item() == pytest.approx(expected)
    assert (bias[[CELEBAMASK.id(n) for n in ("background", "skin", "neck")]] == 0).all()
    assert class_logit_bias(WEIGHTED_RUN, CELEBAMASK, strength=1.0)[NECKLACE].item() == \
        pytest.approx(-math.log(20.0))


@pytest.mark.parametrize("meta", [None, {}, {"loss": {"class_weights": {}}},
                                  {"loss": {"class_weights": {"neck_l": 1.0}}},
                                  {"loss": {"class_weights": {"hand": 20.0}}},
                                  {"foreign": {"label_order": "celebamask"}}])
def test_nothing_changes_where_the_run_weighted_nothing_this_label_set_has(meta):
    assert class_logit_bias(meta, CELEBAMASK) is None
    assert (predicted(meta or {}) == NECKLACE).all()


def test_a_model_trained_with_weighted_necklaces_stops_painting_them_where_unsure():
    assert (predicted(WEIGHTED_RUN, logit_adjustment=0.0) == NECKLACE).all()
    assert (predicted(WEIGHTED_RUN) == 0).all()
    # a strength too small to overturn a 0.5 lead (0.1 * log 20 = 0.3) leaves it
    assert (predicted(WEIGHTED_RUN, logit_adjustment=0.1) == NECKLACE).all()


def test_a_checkpoint_predicts_at_the_strength_it_recorded_unless_told_otherwise():
    assert recorded_strength(None) == recorded_strength({}) == LOGIT_ADJUSTMENT
    assert recorded_strength({"logit_adjustment": None}) == LOGIT_ADJUSTMENT
    assert recorded_strength({"logit_adjustment": 0.75}) == 0.75
    timid = {**WEIGHTED_RUN, "logit_adjustment": 0.1}     # 0.1 * log 20 = 0.3 < the 0.5 lead
    assert (predicted(timid) == NECKLACE).all()
    assert (predicted(timid, logit_adjustment=1.0) == 0).all()


def test_the_best_strength_is_the_one_that_scores_highest_and_the_smaller_on_a_tie():
    assert best_strength(lambda s: -abs(s - 0.75)) == 0.75
    assert best_strength(lambda s: 1.0 if s >= 0.5 else 0.0) == 0.5
    assert best_strength(lambda s: 0.0) == LOGIT_ADJUSTMENT     # finds nothing: the default
    tried = []
    best_strength(lambda s: tried.append(s) or 0.0, (0.0, 0.5))
    assert tried == [0.0, 0.5]
