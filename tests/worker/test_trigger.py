"""worker/trigger.py: retraining by itself after N new labels, never twice at once."""
from __future__ import annotations

from db.engine import session_scope
from db.jobs import fail, finish, mark_running
from db.models import JobState
from tests.worker.conftest import add_faces, face, save_label
from worker.snapshot import take_snapshot
from worker.trigger import maybe_create_training_job


def test_a_job_is_created_after_n_labels_and_not_before(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "val"}, [3, 4])
    with session_scope(sessions) as s:
        assert maybe_create_training_job(s, 3) is None
        save_label(s, ids[3], face(3)[1])
        job = maybe_create_training_job(s, 3)
        assert job is not None and job.kind == "train" and job.state == JobState.queued
        assert job.params["trigger"] == "auto" and job.params["new_labels"] == 3
        assert maybe_create_training_job(s, 3) is None, "a second job while one is queued"


def test_zero_disables_automatic_runs(settings, sessions):
    add_faces(sessions, settings, {1: "train", 2: "val", 3: "train", 4: "train"}, [])
    with session_scope(sessions) as s:
        assert maybe_create_training_job(s, 0) is None


def test_labels_are_counted_from_the_last_successful_run(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "val", 3: "train"}, [4, 5, 6])
    with session_scope(sessions) as s:
        job = maybe_create_training_job(s, 2)
        mark_running(s, job.id)
        job.params = {**job.params, "snapshot": take_snapshot(s).describe()}
        finish(s, job.id)
        assert maybe_create_training_job(s, 2) is None
        save_label(s, ids[4], face(4)[1])
        assert maybe_create_training_job(s, 2) is None
        save_label(s, ids[5], face(5)[1])
        assert maybe_create_training_job(s, 2) is not None


def test_a_failed_automatic_run_is_not_retried_until_a_new_label_arrives(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "val", 3: "train"}, [4])
    with session_scope(sessions) as s:
        job = maybe_create_training_job(s, 3)
        mark_running(s, job.id)
        fail(s, job.id, "boom")
        assert maybe_create_training_job(s, 3) is None
        save_label(s, ids[4], face(4)[1])
        assert maybe_create_training_job(s, 3) is not None


def test_over_an_active_prior_the_first_run_starts_after_a_few_labels(settings, sessions):
    from db.versions import activate, add_version
    from worker.trigger import FIRST_RUN_LABELS

    ids = add_faces(sessions, settings, {1: "train", 2: "val"}, [3, 4, 5])
    with session_scope(sessions) as s:
        assert maybe_create_training_job(s, 10) is None       # no model: wait for ten labels
        activate(s, add_version(s, "models/prior.pt", {}, {"mean_f1": 0.6}, note="prior").id)
        for k in range(3, 1 + FIRST_RUN_LABELS):
            assert maybe_create_training_job(s, 10) is None
            save_label(s, ids[k], face(k)[1])
        job = maybe_create_training_job(s, 10)
        assert job is not None and job.params["new_labels"] == FIRST_RUN_LABELS
