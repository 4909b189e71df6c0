"""The BiSeNet-style peer baseline of ``bench/peer_baseline.py``: shapes, OHEM, a tiny run."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.bisenet import BiSeNet, ohem_cross_entropy, train_bisenet
from core.labels import CELEBAMASK
from model.inference import Predictor
from model.net import ParserConfig
from model.synth import render_face


@pytest.fixture(scope="module")
def faces() -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_face(seed, 64, "studio") for seed in range(4)]


def test_outputs_aux_only_in_training() -> None:
    torch.manual_seed(0)
    model = BiSeNet(ParserConfig.small(input_size=64, edge_head=False))
    x = torch.rand(2, 3, 64, 64)
    out = model.train()(x)
    assert out["logits"].shape == (2, 19, 64, 64)
    assert [a.shape for a in out["aux"]] == [(2, 19, 64, 64)] * 2
    with torch.no_grad():
        out = model.eval()(x)
    assert set(out) == {"logits"} and out["logits"].shape == (2, 19, 64, 64)


def _ohem_case() -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """16 pixels of class 0: 4 hard (logits 0 vs 2), 1 medium below the threshold (1 vs 0),
    11 easy (10 vs 0)."""
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 0] = 10.0
    flat = logits.view(2, 16)
    flat[:, :4] = torch.tensor([0.0, 2.0]).view(2, 1)
    flat[:, 4] = torch.tensor([1.0, 0.0])
    losses = {"hard": math.log(1 + math.exp(2)), "medium": math.log(1 + math.exp(-1)),
              "easy": math.log(1 + math.exp(-10))}
    assert losses["medium"] < -math.log(0.7) < losses["hard"]
    return logits, torch.zeros(1, 4, 4, dtype=torch.long), losses


def test_ohem_keeps_only_hard_pixels() -> None:
    logits, target, losses = _ohem_case()
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=2)
    assert loss.item() == pytest.approx(losses["hard"], rel=1e-5)
    logits.requires_grad_(True)
    ohem_cross_entropy(logits, target, min_kept=2).backward()
    grad = logits.grad.view(2, 16).abs().sum(0)
    assert (grad[:4] > 0).all() and (grad[4:] == 0).all()   # easy pixels ignored


def test_ohem_keeps_at_least_min_kept() -> None:
    logits, target, losses = _ohem_case()
    want = (4 * losses["hard"] + losses["medium"] + 3 * losses["easy"]) / 8
    assert ohem_cross_entropy(logits, target, min_kept=8).item() == pytest.approx(want, rel=1e-5)
    # the default keeps 16 // 16 = 1 pixel at least: the 4 hard ones here
    assert ohem_cross_entropy(logits, target).item() == pytest.approx(losses["hard"], rel=1e-5)


def test_train_bisenet_predicts(faces: list) -> None:
    model, meta = train_bisenet(faces, 64, steps=3, batch=2, seed=0)
    assert meta["steps"] == 3 and math.isfinite(meta["final_loss"])
    assert not model.training
    labels, _ = Predictor(model, model.config, CELEBAMASK).predict(faces[0][0])
    assert labels.shape == (64, 64) and labels.max() < 19


def test_train_bisenet_stops_on_time(faces: list) -> None:
    _, meta = train_bisenet(faces, 64, steps=10_000, batch=2, seed=0, seconds=0.5)
    # 10,000 steps would take minutes; the margin is for a first step on a loaded machine
    assert 1 <= meta["steps"] < 10_000 and meta["seconds"] < 30
