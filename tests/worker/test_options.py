"""worker/options.py: FACET_* variables, validated once."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from model.recipe import CPU_BATCH, CPU_STEPS, CPU_TRAIN_SECONDS, CPU_TRAIN_SIZE, GPU_STEPS
from worker.options import WorkerOptions


def test_defaults_and_environment():
    defaults = WorkerOptions.from_env(env={})
    assert defaults.retrain_every == 10
    assert (defaults.steps_for("cpu"), defaults.steps_for("cuda:0")) == (CPU_STEPS, GPU_STEPS)
    opts = WorkerOptions.from_env(env={"FACET_RETRAIN_EVERY": "3", "FACET_TRAIN_STEPS": "7",
                                       "FACET_SAM_CHECKPOINT": "/m/sam.pth", "FACET_TRAIN_LR": ""})
    assert (opts.retrain_every, opts.train_steps, opts.sam_checkpoint, opts.lr) == (
        3, 7, "/m/sam.pth", None)
    assert WorkerOptions.from_env(env=opts.to_env()) == opts
    assert opts.steps_for("cuda") == 7


def test_a_cpu_run_is_bounded_by_time_and_trains_small_models():
    defaults = WorkerOptions.from_env(env={})
    assert (defaults.seconds_for("cpu"), defaults.seconds_for("cuda")) == (CPU_TRAIN_SECONDS, None)
    assert (defaults.size_for("cpu"), defaults.size_for("cuda:0")) == (CPU_TRAIN_SIZE, None)
    assert (defaults.batch_for("cpu"), defaults.batch_for("cuda")) == (CPU_BATCH, 4)
    opts = WorkerOptions.from_env(env={"FACET_TRAIN_SECONDS": "0", "FACET_TRAIN_SIZE": "256",
                                       "FACET_TRAIN_BATCH": "2"})
    assert (opts.seconds_for("cpu"), opts.size_for("cpu"), opts.size_for("cuda")) == (None, 256, 256)
    assert (opts.batch_for("cpu"), opts.batch_for("cuda")) == (2, 2)
    timed = WorkerOptions.from_env(env={"FACET_TRAIN_SECONDS": "30", "FACET_DISTILL_MIN_F1": "0"})
    assert (timed.seconds_for("cuda"), timed.distill_min_f1) == (30.0, 0.0)
    assert WorkerOptions.from_env(env=timed.to_env()) == timed


@pytest.mark.parametrize("env, match", [({"FACET_TRAIN_STEPS": "many"}, "FACET_TRAIN_STEPS"),
                                        ({"FACET_TRAIN_STEPS": "0"}, "FACET_TRAIN_STEPS"),
                                        ({"FACET_DEVICE": "tpu"}, "FACET_DEVICE"),
                                        ({"FACET_TRAIN_SECONDS": "-1"}, "FACET_TRAIN_SECONDS"),
                                        ({"FACET_DISTILL_MIN_F1": "2"}, "FACET_DISTILL_MIN_F1"),
                                        ({"FACET_RETRAIN_EVERY": "-1"}, "FACET_RETRAIN_EVERY")])
def test_bad_values_name_the_variable(env, match):
    with pytest.raises(FacetError, match=match):
        WorkerOptions.from_env(env=env)


def test_train_only_approved_is_a_flag_that_travels_to_the_worker():
    from db.models import RevisionState

    assert WorkerOptions.from_env(env={}).label_states == (RevisionState.submitted,
                                                           RevisionState.approved)
    for raw in ("1", "true", "YES"):
        opts = WorkerOptions.from_env(env={"FACET_TRAIN_ONLY_APPROVED": raw})
        assert opts.train_only_approved and opts.label_states == (RevisionState.approved,)
        assert WorkerOptions.from_env(env=opts.to_env()) == opts
    assert not WorkerOptions.from_env(env={"FACET_TRAIN_ONLY_APPROVED": "0"}).train_only_approved
    with pytest.raises(FacetError, match="FACET_TRAIN_ONLY_APPROVED"):
        WorkerOptions.from_env(env={"FACET_TRAIN_ONLY_APPROVED": "maybe"})
