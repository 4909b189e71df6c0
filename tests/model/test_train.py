"""Training: the loss goes down, progress is reported, seeds reproduce, cancellation works,
and distillation adds its own term."""
from __future__ import annotations

import math

import pytest
import torch

from core.errors import FacetError
from model.checkpoint import Checkpoint
from model.distill import DistillConfig
from model.inference import Predictor
from model.losses import THIN_WEIGHT
from model.net import ParserConfig
from model.recipe import TrainRecipe
from model.schedule import lr_factor, schedule_position
from model.train import train, train_steps
from tests.model.faces import face_samples

CONFIG = ParserConfig.small(input_size=64)


@pytest.fixture(scope="module")
def samples():
    return face_samples(6, 64, seed=0)


def test_loss_goes_down_and_progress_is_reported(samples):
    seen = []
    result = train(samples, CONFIG, TrainRecipe(steps=40, batch_size=4, seed=1, lr=2e-3),
                   on_step=lambda s, n, losses, rate: seen.append((s, n, losses, rate)))
    assert [s for s, *_ in seen] == list(range(1, 41)) and all(n == 40 for _, n, *_ in seen)
    assert set(seen[0][2]) == {"ce", "edge", "total"} and all(r > 0 for *_, r in seen)
    first = sum(l["ce"] for _, _, l, _ in seen[:5]) / 5
    last = sum(l["ce"] for _, _, l, _ in seen[-5:]) / 5
    assert last < 0.6 * first
    assert not result.model.training
    assert result.meta["steps"] == 40 and result.meta["final_losses"]["total"] == seen[-1][2]["total"]


def test_same_seed_same_run(samples):
    runs = []
    for _ in range(2):
        losses = []
        train(samples, CONFIG, TrainRecipe(steps=3, batch_size=2, seed=7),
              on_step=lambda s, n, l, r: losses.append(l["total"]))
        runs.append(losses)
    assert runs[0] == runs[1]


def test_exception_in_on_step_cancels(samples):
    calls = []

    def cancel(step, total, losses, rate):
        calls.append(step)
        if step == 2:
            raise RuntimeError("cancelled by user")

    with pytest.raises(RuntimeError, match="cancelled"):
        train(samples, CONFIG, TrainRecipe(steps=50, batch_size=2), on_step=cancel)
    assert calls == [1, 2]


def test_distillation_from_model_and_ema(samples):
    base = train(samples, CONFIG, TrainRecipe(steps=2, batch_size=2)).model
    unlabeled = [im for im, _ in face_samples(3, 64, seed=50)]
    seen = []
    result = train(samples[:2], None, TrainRecipe(steps=2, batch_size=2), init=base, teacher=base,
                   unlabeled=unlabeled, on_step=lambda s, n, l, r: seen.append(l))
    assert "distill" in seen[-1] and seen[-1]["distill"] >= 0
    assert result.meta["distill"]["teacher"] == "checkpoint" and result.meta["n_unlabeled"] == 3
    # the init model itself is left untouched
    assert not all(torch.equal(a, b) for a, b in zip(base.state_dict().values(),
                                                     result.model.state_dict().values()))
    ema = train(samples[:2], CONFIG,
                TrainRecipe(steps=2, batch_size=2, distill=DistillConfig(ema_teacher=True)),
                unlabeled=unlabeled)
    assert ema.meta["distill"]["teacher"] == "ema"


def test_bad_requests(samples):
    with pytest.raises(FacetError, match="teacher"):
        train(samples, CONFIG, TrainRecipe(steps=1), unlabeled=[samples[0][0]])
    with pytest.raises(FacetError):
        train(samples, CONFIG, TrainRecipe(steps=0))
    with pytest.raises(FacetError):
        train([], CONFIG, TrainRecipe(steps=1))
    with pytest.raises(FacetError, match="CUDA"):
        train(samples, CONFIG, TrainRecipe(steps=1), device="cuda") \
            if not torch.cuda.is_available() else \
            (_ for _ in ()).throw(FacetError("CUDA present: nothing to check"))


def test_schedules():
    assert lr_factor(0, 100, 10, "poly") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(99, 100, 10, "poly") < 0.05
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5, abs=0.02)


def test_a_time_budget_ends_the_run_on_time_and_the_schedule_follows_the_clock(samples):
    seen = []
    budgeted = TrainRecipe(steps=100_000, batch_size=2, seed=1, time_budget_s=1.5)
    result = train(samples, CONFIG, budgeted, on_step=lambda s, n, losses, rate: seen.append((s, n)))
    made = result.meta["steps"]
    assert 1 <= made < 100_000 and result.meta["max_steps"] == 100_000
    assert seen[-1] == (made, made), "the last step reports itself as the last"
    # the reported totals are the pace-based estimate, not the 100 000-step cap
    assert all(made / 3 <= n <= 3 * made for _, n in seen[len(seen) // 2:])
    # the budget is met to within one step (a step at 64 px takes well under a second here)
    assert 1.5 <= result.meta["seconds"] < 1.5 + 3 * result.meta["seconds"] / made + 1.0
    # steps come first when they run out before the clock
    quick = train(samples, CONFIG, TrainRecipe(steps=3, batch_size=2, time_budget_s=600.0))
    assert quick.meta["steps"] == 3
    with pytest.raises(FacetError, match="time budget"):
        train(samples, CONFIG, TrainRecipe(steps=3, time_budget_s=0))


def test_schedule_position_follows_steps_or_the_clock():
    assert schedule_position(7, 100, 50.0, None) == 7
    assert schedule_position(7, 100, 50.0, 100.0) == 50       # half the time: half the schedule
    assert schedule_position(70, 100, 50.0, 100.0) == 70      # a fast run is ahead of its clock
    assert schedule_position(7, 100, 250.0, 100.0) == 100     # over time: the schedule is done


def test_train_steps_is_train_with_the_recipe_given_as_keywords(samples):
    runs = []
    for run in (lambda cb: train_steps(samples, CONFIG, 2, batch_size=2, seed=3, on_step=cb),
                lambda cb: train(samples, CONFIG, TrainRecipe(steps=2, batch_size=2, seed=3),
                                 on_step=cb)):
        losses = []
        result = run(lambda s, n, l, r: losses.append(l["total"]))
        runs.append((losses, result.meta["recipe"]))
    assert runs[0] == runs[1]


def test_a_run_from_a_checkpoint_keeps_the_logit_adjustment_it_recorded(samples):
    first = train(samples, CONFIG, TrainRecipe(steps=1, batch_size=2))
    assert first.meta["logit_adjustment"] is None
    tuned = Checkpoint(first.model, first.config, first.labels,
                       {**first.meta, "logit_adjustment": 0.75})
    second = train(samples, None, TrainRecipe(steps=1, batch_size=2), init=tuned)
    assert second.meta["logit_adjustment"] == 0.75
    predictor = Predictor(second.model, second.config, second.labels, second.meta)
    necklace = second.labels.id("neck_l")
    assert predictor.logit_bias[0, necklace, 0, 0].item() == \
        pytest.approx(-0.75 * math.log(THIN_WEIGHT))
