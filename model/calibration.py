"""Undoing the training class weights when predicting (logit adjustment).

Training weights the thin rare classes (earrings, necklaces) :data:`model.losses.THIN_WEIGHT`
times in the cross-entropy, or the parser never learns them at all. The price is a decision
boundary moved towards those classes: the shipped prior painted 7–13 times as many earring and
necklace pixels as the truth has (precision 0.05–0.12 at recall 0.6–0.85), a band around each
chain instead of the chain. A class weighted ``w`` shifts the optimal logit by about
``log w``; subtracting ``strength * log w`` from that class's logit at prediction moves the
boundary back (the post-hoc logit adjustment of Menon et al., ICLR 2021). ``strength`` 1 undoes
the weight in full. How much is best depends on how sure the model is: on held-out synthetic
faces that no reported score uses (from :data:`model.prior.TUNING_FIRST` on;
docs/BENCHMARKS.md "Thin parts: undoing the class weights") the thin classes' F1 peaked at 0.5
for models trained 1,500 steps from random weights without a full-resolution fine head, at
0.5–0.75 with one and at 0.75 for the prior. So ``pretrain`` records the strength that did best
on such faces (``meta["logit_adjustment"]``, :func:`model.prior.tune_logit_adjustment`), a run
that goes on from a checkpoint inherits its strength, and anything else gets
:data:`LOGIT_ADJUSTMENT`.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from core.labels import LabelSet

LOGIT_ADJUSTMENT = 0.5
"""Default ``strength``: how much of ``log(class weight)`` a prediction takes off a weighted
class's logit (0 = the raw logits)."""
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The strengths :func:`best_strength` tries."""


def recorded_strength(meta: dict[str, Any] | None) -> float:
    """The strength a checkpoint recorded (``meta["logit_adjustment"]``), else the default."""
    value = (meta or {}).get("logit_adjustment")
    return LOGIT_ADJUSTMENT if value is None else float(value)


def best_strength(thin_f1: Callable[[float], float],
                  strengths: tuple[float, ...] = STRENGTHS) -> float:
    """The strength with the highest ``thin_f1(strength)`` (the thin classes' mean F1 on faces
    set aside for this); on a tie the smaller one, and :data:`LOGIT_ADJUSTMENT` when every
    strength scores the same (a model that finds no thin part at all says nothing)."""
    scores = {s: thin_f1(s) for s in strengths}
    if len(set(scores.values())) == 1:
        return LOGIT_ADJUSTMENT
    return max(strengths, key=lambda s: (scores[s], -s))


def class_logit_bias(meta: dict[str, Any] | None, labels: LabelSet,
                     strength: float = LOGIT_ADJUSTMENT) -> torch.Tensor | None:
    """``num_classes`` float32 offsets to add to a model's logits, ``-strength * log(w_c)`` for
    each class weighted ``w_c`` in the run that made the model (its checkpoint metadata
    ``meta["loss"]["class_weights"]``), 0 elsewhere. ``None`` when nothing is to change: no
    weights recorded (a foreign model, an old checkpoint), all weights 1, or ``strength`` 0.
    Names the label set does not have are ignored."""
    weights = ((meta or {}).get("loss") or {}).get("class_weights") or {}
    bias = torch.zeros(labels.num_classes)
    for name, weight in weights.items():
        if name in labels.names and float(weight) > 0:
            bias[labels.id(name)] = -strength * math.log(float(weight))
    return bias if bool(bias.any()) else None


__all__ = ["LOGIT_ADJUSTMENT", "STRENGTHS", "best_strength", "class_logit_bias",
           "recorded_strength"]
