"""The training recipe: one home of the defaults, the device presets of the loop, and the
values a run resolves (learning rate, warm-up, batch sizes)."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from model.recipe import (CPU_BATCH, CPU_STEPS, CPU_TRAIN_SECONDS, CPU_TRAIN_SIZE, GPU_BATCH,
                          GPU_STEPS, TrainRecipe, default_lr)


def test_device_presets():
    cpu, gpu = TrainRecipe.for_device("cpu"), TrainRecipe.for_device("cuda:0")
    assert (cpu.steps, cpu.time_budget_s, cpu.batch_size, cpu.input_size) == (
        CPU_STEPS, CPU_TRAIN_SECONDS, CPU_BATCH, CPU_TRAIN_SIZE)
    assert (gpu.steps, gpu.time_budget_s, gpu.batch_size, gpu.input_size) == (
        GPU_STEPS, None, GPU_BATCH, None)
    assert TrainRecipe.for_device("cpu", steps=7).steps == 7
    assert cpu.fresh_config().input_size == CPU_TRAIN_SIZE
    assert gpu.fresh_config("paper").input_size == 512


def test_a_run_resolves_what_the_recipe_leaves_open():
    recipe = TrainRecipe(steps=300, batch_size=6)
    scratch = recipe.resolved(fine_tune=False, unlabeled=True, gpu=False)
    assert (scratch.lr, scratch.warmup, scratch.unlabeled_batch, scratch.num_workers) == (
        default_lr("adamw"), 30, 6, 0)
    tuned = recipe.replace(optimizer="sgd").resolved(fine_tune=True, unlabeled=False, gpu=False)
    assert tuned.lr == pytest.approx(default_lr("sgd") / 5) and tuned.unlabeled_batch == 0
    fixed = recipe.replace(lr=1e-3, warmup=5).resolved(fine_tune=True, unlabeled=False, gpu=False)
    assert (fixed.lr, fixed.warmup) == (1e-3, 5)


@pytest.mark.parametrize("changes, match", [({"steps": 0}, "steps"), ({"batch_size": 0}, "batch"),
                                            ({"optimizer": "lamb"}, "optimizer"),
                                            ({"schedule": "step"}, "schedule"),
                                            ({"time_budget_s": 0}, "time budget")])
def test_bad_recipes_are_refused(changes, match):
    with pytest.raises(FacetError, match=match):
        TrainRecipe(**changes)
