"""worker/retraining.py through the ``facet.train`` task (immediate mode): snapshot → train → publish."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from huey.exceptions import TaskException

from core.errors import FacetError
from core.imageio import decode_label_png
from db.cache import get_prediction
from db.engine import session_scope
from db.jobs import create_job, fail, get_job, job_points, mark_running
from db.models import JobState, ModelVersion
from db.versions import activate, active_version, add_version, get_version, list_versions
from model.checkpoint import load_checkpoint
from model.recipe import default_lr
from tests.worker.conftest import DEVICE, SIZE, add_faces, immediate_tasks, save_label
from worker.queue import Tasks
from worker.retraining import ProgressWriter, decide

LABELLED = {1: "train", 2: "val", 3: "train", 4: "val", 5: "train", 6: "train"}
UNLABELLED = [7, 8, 9]
GOOD = {"steps": 40, "lr": 0.01, "batch_size": 4}
"""Enough for the simple test faces: validation mean F1 ~0.2 (background, skin, hair learnt)."""


def _train(tasks, sessions, **params) -> tuple[int, int | None]:
    with session_scope(sessions) as s:
        job_id = create_job(s, "train", params).id
    return job_id, tasks.enqueue("facet.train", job_id).get()


def test_first_run_publishes_an_active_version_and_scores_the_queue(tasks, settings, sessions):
    ids = add_faces(sessions, settings, LABELLED, UNLABELLED)
    job_id, version_id = _train(tasks, sessions)
    with session_scope(sessions) as s:
        job = get_job(s, job_id)
        assert job.state == JobState.succeeded and job.progress == 1.0
        assert job.params["snapshot"]["val_ids"] == [ids[2], ids[4]]
        points = job_points(s, job_id)
        assert [p.step for p in points] == [1, 2, 3, 4]  # interval 0: every step
        assert {"loss", "ce", "rate"} <= set(points[-1].values)
        version = get_version(s, version_id)
        assert version.is_active and version.job_id == job_id and version.num_labels == 6
        assert version.parent_id is None and version.metrics["baseline_mean_f1"] is None
        assert 0.0 <= version.metrics["mean_f1"] <= 1.0
        assert version.metrics["device"].startswith(DEVICE)  # cuda when FACET_TEST_DEVICE=cuda
        assert set(version.metrics["per_class_f1"]) >= {"skin", "hair"}
        ckpt = settings.data_dir / version.checkpoint_path
        assert ckpt.parent == settings.models_dir and ckpt.is_file()
        assert not list(settings.models_dir.glob("*.tmp"))
        for seed in UNLABELLED:  # the queue was re-scored by the new model
            assert get_prediction(s, ids[seed], version_id) is not None
    meta = load_checkpoint(ckpt).meta
    assert meta["job_id"] == job_id and meta["val_ids"] == [ids[2], ids[4]]


def _tasks_with(settings, sessions, options, **changes) -> Tasks:
    return immediate_tasks(settings, sessions, replace(options, **changes))


def test_a_run_can_train_on_approved_labels_only(settings, sessions, options):
    from db.review import approve

    tasks = _tasks_with(settings, sessions, options, train_only_approved=True)
    ids = add_faces(sessions, settings, LABELLED, UNLABELLED)
    with session_scope(sessions) as s:
        for seed in (1, 2, 3, 4):                 # two train, two val images reviewed
            approve(s, ids[seed], None)
    job_id, version_id = _train(tasks, sessions)
    with session_scope(sessions) as s:
        version = get_version(s, version_id)
        assert version.num_labels == 4 and version.metrics["only_approved"]
        assert (version.metrics["num_approved"], version.metrics["num_submitted"]) == (4, 0)
        trained = get_job(s, job_id).params["snapshot"]["train_ids"]
    assert sorted(trained) == [ids[1], ids[3]]      # submitted 5 and 6 wait for review


def test_next_run_starts_from_the_active_model_and_distils_from_it(settings, sessions, options):
    tasks = _tasks_with(settings, sessions, options, distill_min_f1=0.0)  # any model teaches
    add_faces(sessions, settings, LABELLED, UNLABELLED)
    _, first = _train(tasks, sessions, **GOOD)
    job_id, second = _train(tasks, sessions, steps=3)
    with session_scope(sessions) as s:
        v2 = get_version(s, second)
        assert v2.parent_id == first
        assert v2.metrics["baseline_version_id"] == first
        assert v2.metrics["baseline_mean_f1"] == pytest.approx(get_version(s, first).metrics["mean_f1"])
        assert v2.is_active == (v2.metrics["mean_f1"] >= v2.metrics["baseline_mean_f1"])
        ckpt = settings.data_dir / v2.checkpoint_path
    meta = load_checkpoint(ckpt).meta
    assert meta["init"] is not None, "student did not start from the active model"
    assert meta["distill"]["teacher"] == "checkpoint" and meta["n_unlabeled"] == 3
    assert meta["lr"] == pytest.approx(default_lr(fine_tune=True)) and v2.metrics["distilled"]
    assert (v2.metrics["init_version_id"], v2.metrics["teacher_version_id"]) == (first, first)

    _, third = _train(tasks, sessions, steps=2, distill_weight=0)  # asked not to distil: still
    with session_scope(sessions) as s:                            # a fine-tuning of a good model
        ckpt = settings.data_dir / get_version(s, third).checkpoint_path
    meta = load_checkpoint(ckpt).meta
    assert meta["distill"] is None and meta["lr"] == pytest.approx(default_lr(fine_tune=True))


def test_a_weak_active_model_is_a_warm_start_not_a_teacher(settings, sessions, options):
    tasks = _tasks_with(settings, sessions, options, distill_min_f1=1.0)  # no model is good enough
    add_faces(sessions, settings, LABELLED, UNLABELLED)
    _, first = _train(tasks, sessions, **GOOD)
    _, second = _train(tasks, sessions, steps=3)
    with session_scope(sessions) as s:
        v2 = get_version(s, second)
        assert v2.parent_id == first and v2.metrics["baseline_mean_f1"] < 1.0
        assert not v2.metrics["distilled"] and v2.metrics["num_unlabeled"] == 0
        assert (v2.metrics["init_version_id"], v2.metrics["teacher_version_id"]) == (first, None)
        ckpt = settings.data_dir / v2.checkpoint_path
    meta = load_checkpoint(ckpt).meta
    assert meta["init"] is not None and meta["distill"] is None and meta["n_unlabeled"] == 0
    assert meta["lr"] == pytest.approx(default_lr(fine_tune=False))


def test_a_time_budget_bounds_the_run(tasks, settings, sessions):
    add_faces(sessions, settings, LABELLED, UNLABELLED)
    job_id, version_id = _train(tasks, sessions, steps=100_000, seconds=2)
    with session_scope(sessions) as s:
        metrics = get_version(s, version_id).metrics
        assert 1 <= metrics["steps"] < 100_000 and metrics["time_budget_s"] == 2
        assert metrics["train_seconds"] < 60
        assert get_job(s, job_id).state == JobState.succeeded


def test_a_worse_version_is_stored_but_not_activated_and_an_older_one_can_come_back(
        tasks, settings, sessions):
    ids = add_faces(sessions, settings, LABELLED, UNLABELLED)
    _, good = _train(tasks, sessions, **GOOD)
    with session_scope(sessions) as s:
        good_f1 = get_version(s, good).metrics["mean_f1"]
    assert good_f1 > 0.05, "precondition: the first model learnt something"
    with session_scope(sessions) as s:  # careless corrections: everything painted background
        for seed, split in LABELLED.items():
            if split == "train":
                save_label(s, ids[seed], np.zeros((SIZE, SIZE), np.uint8))
    job_id, bad = _train(tasks, sessions, steps=10, lr=0.01, distill_weight=0, fresh=True)
    with session_scope(sessions) as s:
        assert get_job(s, job_id).state == JobState.succeeded
        version = get_version(s, bad)
        assert not version.is_active
        assert version.metrics["mean_f1"] < version.metrics["baseline_mean_f1"] == pytest.approx(good_f1)
        assert "not activated" in version.note
        assert active_version(s).id == good
        assert get_prediction(s, ids[7], bad) is None  # the queue was not re-scored with it

    with session_scope(sessions) as s:  # rollback/promotion is any version, any time
        activate(s, bad)
    tasks.enqueue("facet.score_all", bad)
    with session_scope(sessions) as s:
        assert active_version(s).id == bad
        old = decode_label_png(get_prediction(s, ids[7], good).label_png, 19)
        new = decode_label_png(get_prediction(s, ids[7], bad).label_png, 19)
        assert not np.array_equal(old, new)
        assert s.get(ModelVersion, bad).is_active and not s.get(ModelVersion, good).is_active


def test_a_run_that_cannot_start_fails_the_job_and_publishes_nothing(tasks, settings, sessions):
    add_faces(sessions, settings, {1: "train", 2: "val"}, [3])
    with session_scope(sessions) as s:
        job_id = create_job(s, "train").id
    with pytest.raises(TaskException, match="at least 3"):
        tasks.enqueue("facet.train", job_id).get()
    with session_scope(sessions) as s:
        job = get_job(s, job_id)
        assert job.state == JobState.failed and "at least 3" in job.error
        assert list_versions(s) == []


def test_progress_writer_stops_training_when_the_job_was_failed_elsewhere(sessions):
    with session_scope(sessions) as s:
        job_id = create_job(s, "train").id
        mark_running(s, job_id)
    writer = ProgressWriter(sessions, job_id, interval_s=0.0)
    writer(1, 10, {"total": 1.5, "ce": 1.2}, 3.0)
    with session_scope(sessions) as s:
        assert job_points(s, job_id)[0].values == {"loss": 1.5, "ce": 1.2, "rate": 3.0}
        fail(s, job_id, "cancelled by an admin")
    with pytest.raises(FacetError, match="already failed"):
        writer(2, 10, {"total": 1.4}, 3.0)


def test_decide_keeps_ties_and_refuses_regressions():
    assert decide(0.5, None) == (True, None)
    assert decide(0.5, 0.5) == (True, None)
    active, note = decide(0.49, 0.5)
    assert not active and "0.4900" in note and "0.5000" in note


def test_a_rollback_during_a_run_is_not_overridden_by_its_publish(tasks, settings, sessions,
                                                                   monkeypatch):
    import model.evaluate as model_evaluate

    add_faces(sessions, settings, LABELLED, UNLABELLED)
    _, first = _train(tasks, sessions, **GOOD)
    with session_scope(sessions) as s:
        older = add_version(s, get_version(s, first).checkpoint_path, {}, {"mean_f1": 0.1},
                            note="an older model an admin brings back").id
    real_evaluate = model_evaluate.evaluate
    calls = []

    def evaluate_while_an_admin_rolls_back(*args, **kwargs):
        scores = real_evaluate(*args, **kwargs)
        calls.append(scores)
        if len(calls) == 2:  # 1: the active model before training; 2: the new model, clearly
            # better, and meanwhile the admin rolls back
            with session_scope(sessions) as s:
                activate(s, older)
            scores = {**scores, "mean_f1": 1.0}
        return scores

    monkeypatch.setattr(model_evaluate, "evaluate", evaluate_while_an_admin_rolls_back)
    job_id, new = _train(tasks, sessions, steps=2, batch_size=4)
    with session_scope(sessions) as s:
        assert active_version(s).id == older
        version = get_version(s, new)
        assert not version.is_active and version.metrics["mean_f1"] == 1.0
        assert "activated during the run" in version.note
        assert get_job(s, job_id).state == JobState.succeeded
