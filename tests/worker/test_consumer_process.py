"""A real consumer process on the SQLite queue (``python app.py worker``), driven like the studio
drives it: labels saved, notifications and jobs enqueued by id through :class:`HueyTaskQueue`.

Labels are saved with the db functions the REST API calls (``tests/worker/test_rest_loop.py``
does the same over HTTP once the studio's API is importable).
"""
from __future__ import annotations

import pytest

from db.cache import get_prediction
from db.engine import session_scope
from db.jobs import create_job, get_job, latest_job
from db.models import JobState
from db.versions import active_version, list_versions
from model.checkpoint import load_checkpoint
from tests.worker.conftest import (add_faces, consumer_env, face, publish_untrained, save_label,
                                   wait_for)
from worker.child_process import start_worker_process
from worker.client import HueyTaskQueue
from worker.options import WorkerOptions
from worker.queue import TRAIN, make_huey
from worker.tasks import TRAIN_LOCK

pytestmark = pytest.mark.slow

LABELLED = {1: "train", 2: "val", 3: "train", 4: "val"}


def _job_state(sessions, job_id):
    with session_scope(sessions) as s:
        job = get_job(s, job_id)
        return job.state, job.error


def _prediction_version(sessions, image_id, version_id):
    with session_scope(sessions) as s:
        return get_prediction(s, image_id, version_id) is not None


def test_saved_labels_trigger_training_and_the_new_model_serves(settings, sessions):
    """Auto-retrain after N labels (4 imported + 2 saved = 6) → new active version →
    pre-annotations from it, no restart."""
    ids = add_faces(sessions, settings, LABELLED, [5, 6, 7, 8])
    v0 = publish_untrained(sessions, settings, seed=3)
    env = consumer_env(FACET_RETRAIN_EVERY="6", FACET_TRAIN_STEPS="40", FACET_TRAIN_BATCH="4",
                       FACET_TRAIN_LR="0.01")
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=env))
    with start_worker_process(settings, env=env) as worker:
        client.enqueue_prediction(ids[8])
        wait_for(lambda: _prediction_version(sessions, ids[8], v0), 60,
                 "the pre-annotation by the initial model", worker.log_path)
        for seed in (5, 6):  # two annotators submit corrections; the studio notifies the queue
            with session_scope(sessions) as s:
                save_label(s, ids[seed], face(seed)[1])
            client.label_saved(ids[seed])
        job_id = wait_for(lambda: _latest_train_job(sessions), 30, "an automatic training job",
                          worker.log_path)
        wait_for(lambda: _job_state(sessions, job_id)[0] in (JobState.succeeded, JobState.failed),
                 180, "the training job to finish", worker.log_path)
        assert _job_state(sessions, job_id) == (JobState.succeeded, None)
        with session_scope(sessions) as s:
            active = active_version(s)
            assert active.id != v0 and active.job_id == job_id and active.parent_id == v0
            assert active.metrics["mean_f1"] >= active.metrics["baseline_mean_f1"]
            new = active.id
        # the queue was re-scored with the new model in the background...
        wait_for(lambda: _prediction_version(sessions, ids[8], new), 60,
                 "the refreshed pre-annotation", worker.log_path)
        # ...and a newly arrived image is pre-annotated by it too
        with session_scope(sessions) as s:
            from tests.worker.conftest import add_face
            fresh = add_face(s, settings, 42)
        client.enqueue_prediction(fresh)
        wait_for(lambda: _prediction_version(sessions, fresh, new), 60,
                 "a pre-annotation of a new image by the new model", worker.log_path)
        assert worker.alive()
    assert worker.popen.returncode is not None


def _latest_train_job(sessions):
    with session_scope(sessions) as s:
        job = latest_job(s, "train")
        return None if job is None else job.id


def test_a_killed_consumer_leaves_the_active_model_and_a_failed_job(settings, sessions):
    """SIGKILL mid-training: active model unchanged; next start fails the job; next run publishes."""
    ids = add_faces(sessions, settings, LABELLED, [5, 6])
    v0 = publish_untrained(sessions, settings, seed=3)
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=consumer_env()))
    with session_scope(sessions) as s:
        doomed = create_job(s, "train", {"steps": 100000}).id
    worker = start_worker_process(settings, env=consumer_env())
    try:
        client.enqueue_training(doomed)
        wait_for(lambda: _has_points(sessions, doomed), 90, "training progress", worker.log_path)
    finally:
        worker.kill_group()
    with session_scope(sessions) as s:
        assert get_job(s, doomed).state == JobState.running  # nobody could record the crash
        assert [v.id for v in list_versions(s)] == [v0] and active_version(s).id == v0
        ckpt = settings.data_dir / active_version(s).checkpoint_path
    load_checkpoint(ckpt)  # the active model is intact and loadable
    assert make_huey(settings, TRAIN).is_locked(TRAIN_LOCK), "the killed run left its lock behind"

    with session_scope(sessions) as s:
        retry = create_job(s, "train", {"steps": 4}).id
    # data-loading processes as on a GPU machine: Huey's daemonic workers must be able to fork
    with start_worker_process(settings, env=consumer_env(FACET_TRAIN_LOADER_WORKERS="1")) as worker:
        client.enqueue_training(retry)
        client.enqueue_prediction(ids[5])
        wait_for(lambda: _job_state(sessions, doomed)[0] == JobState.failed, 60,
                 "the interrupted job to be failed at start", worker.log_path)
        assert "died during the run" in _job_state(sessions, doomed)[1]
        wait_for(lambda: _prediction_version(sessions, ids[5], v0), 60,
                 "the active model serving after the crash", worker.log_path)
        wait_for(lambda: _job_state(sessions, retry)[0] in (JobState.succeeded, JobState.failed),
                 120, "the retry to finish", worker.log_path)
        assert _job_state(sessions, retry) == (JobState.succeeded, None)
    with session_scope(sessions) as s:
        published = [v for v in list_versions(s) if v.job_id == retry]
        assert len(published) == 1
        load_checkpoint(settings.data_dir / published[0].checkpoint_path)
    assert not make_huey(settings, TRAIN).is_locked(TRAIN_LOCK)


def _has_points(sessions, job_id):
    from db.jobs import job_points
    with session_scope(sessions) as s:
        return len(job_points(s, job_id)) > 0
