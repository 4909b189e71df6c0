"""Losses: each term is reported, behaves at its extremes, and the weights do what they say."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.labels import CELEBAMASK
from model.losses import (THIN_WEIGHT, LossConfig, ParsingLoss, balanced_edge_loss, lovasz_softmax,
                          weighted_cross_entropy)

C = CELEBAMASK.num_classes


def _target() -> torch.Tensor:
    t = torch.zeros(2, 16, 16, dtype=torch.long)
    t[:, 4:12, 4:12] = 1
    t[1, 6:8, 6:8] = CELEBAMASK.id("ear_r")
    return t


def test_unweighted_ce_matches_torch():
    logits = torch.randn(2, C, 16, 16)
    t = _target()
    ce = weighted_cross_entropy(logits, t, torch.ones(2, 16, 16))
    assert ce.item() == pytest.approx(F.cross_entropy(logits, t).item(), rel=1e-5)


def test_terms_reported_separately_and_summed():
    logits = torch.randn(2, C, 16, 16)
    out = {"logits": logits, "edges": torch.randn(2, 1, 16, 16)}
    total, terms = ParsingLoss(LossConfig(edge_weight=0.5, lovasz_weight=0.25), CELEBAMASK)(out, _target())
    assert set(terms) == {"ce", "edge", "lovasz"}
    expected = terms["ce"] + 0.5 * terms["edge"] + 0.25 * terms["lovasz"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    plain_total, plain = ParsingLoss(LossConfig.plain(), CELEBAMASK)(out, _target())
    assert set(plain) == {"ce"}


def test_edge_pixels_and_thin_classes_weigh_more():
    t = _target()
    edge_of = lambda tt: (tt != torch.roll(tt, 1, 1)) | (tt != torch.roll(tt, 1, 2))  # noqa: E731
    logits = torch.zeros(2, C, 16, 16)
    logits.scatter_(1, t[:, None], 5.0)
    logits[edge_of(t)[:, None].expand_as(logits)] = 0.0   # wrong (uniform) on edges only
    base = ParsingLoss(LossConfig.plain(), CELEBAMASK)({"logits": logits}, t)[1]["ce"]
    edgy = ParsingLoss(LossConfig(edge_ce_weight=3.0, edge_weight=0), CELEBAMASK)({"logits": logits}, t)[1]["ce"]
    assert edgy > base * 1.5
    w = LossConfig().class_weight_tensor(CELEBAMASK)
    assert w[CELEBAMASK.id("ear_r")] == THIN_WEIGHT > 1.0 and w[CELEBAMASK.id("skin")] == 1.0


def test_balanced_edge_loss_extremes():
    edges = torch.zeros(1, 8, 8, dtype=torch.bool)
    edges[0, 3] = True
    perfect = (edges.float() * 40 - 20)[:, None]
    assert balanced_edge_loss(perfect, edges).item() < 1e-6
    assert balanced_edge_loss(torch.zeros(1, 1, 8, 8), edges).item() == pytest.approx(math.log(2), rel=1e-5)
    # predicting "no edge" everywhere is not rewarded although edges are rare
    all_neg = torch.full((1, 1, 8, 8), -20.0)
    assert balanced_edge_loss(all_neg, edges).item() > 5
    assert balanced_edge_loss(all_neg, torch.zeros_like(edges)).item() < 1e-6


def test_lovasz_is_zero_for_perfect_and_positive_otherwise():
    t = _target()
    perfect = F.one_hot(t, C).permute(0, 3, 1, 2).float()
    assert lovasz_softmax(perfect, t).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full_like(perfect, 1.0 / C)
    assert lovasz_softmax(uniform, t).item() > 0.5


def _lovasz_one_class_at_a_time(probs, target):
    """Berman et al.'s Lovász-softmax written plainly, one class per loop iteration."""
    c = probs.shape[1]
    probs, target = probs.permute(0, 2, 3, 1).reshape(-1, c), target.reshape(-1)
    losses = []
    for cls in torch.unique(target).tolist():
        fg = (target == cls).float()
        errors, order = torch.sort((fg - probs[:, cls]).abs(), descending=True)
        fg_sorted = fg[order]
        jaccard = 1.0 - (fg_sorted.sum() - fg_sorted.cumsum(0)) / (
            fg_sorted.sum() + (1.0 - fg_sorted).cumsum(0))
        losses.append(torch.dot(errors, torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])))
    return torch.stack(losses).mean()


def test_batched_lovasz_equals_the_per_class_definition_in_value_and_gradient():
    torch.manual_seed(3)
    logits = torch.randn(2, 19, 12, 12, requires_grad=True)
    target = torch.randint(0, 7, (2, 12, 12))      # a few classes absent, as in real batches
    fast = lovasz_softmax(torch.softmax(logits, 1), target)
    (grad_fast,) = torch.autograd.grad(fast, logits)
    slow = _lovasz_one_class_at_a_time(torch.softmax(logits, 1), target)
    (grad_slow,) = torch.autograd.grad(slow, logits)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-6)
    assert torch.allclose(grad_fast, grad_slow, atol=1e-7)
