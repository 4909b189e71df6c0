"""worker/options.py: FACET_* variables, validated once."""
from __future__ import annotations

import pytest

from model.errors import FacetError
from worker.options import CPU_STEPS, GPU_STEPS, WorkerOptions


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


@pytest.mark.parametrize("env, match", [({"FACET_TRAIN_STEPS": "many"}, "FACET_TRAIN_STEPS"),
                                        ({"FACET_TRAIN_STEPS": "0"}, "FACET_TRAIN_STEPS"),
                                        ({"FACET_DEVICE": "tpu"}, "FACET_DEVICE"),
                                        ({"FACET_RETRAIN_EVERY": "-1"}, "FACET_RETRAIN_EVERY")])
def test_bad_values_name_the_variable(env, match):
    with pytest.raises(FacetError, match=match):
        WorkerOptions.from_env(env=env)
