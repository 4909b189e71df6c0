"""Routed workers (``python app.py worker --queues train|light``) as real consumer processes on
the SQLite queue: a light worker never takes a training run, a train worker does, and a
default worker runs a consumer for each queue and stops both."""
from __future__ import annotations

import os
import re

import pytest

from db.cache import get_prediction
from db.engine import session_scope
from db.jobs import create_job, get_job
from db.models import JobState
from tests.worker.conftest import (add_face, add_faces, consumer_env, publish_untrained,
                                   wait_for)
from worker.child_process import start_worker_process
from worker.client import HueyTaskQueue
from worker.options import WorkerOptions
from worker.queue import LIGHT, TRAIN
from worker.reaper import pid_alive

pytestmark = pytest.mark.slow


def _predicted(sessions, image_id, version_id):
    with session_scope(sessions) as s:
        return get_prediction(s, image_id, version_id) is not None


def _state(sessions, job_id):
    with session_scope(sessions) as s:
        return get_job(s, job_id).state


def _training_messages(huey) -> int:
    """Queued ``facet.train`` messages (the periodic reaper may sit in the same queue)."""
    return sum(1 for task in huey.pending() if task.name == "facet.train")


def test_a_light_worker_leaves_training_to_a_train_worker(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "val", 3: "train", 4: "val"}, [5, 6])
    v0 = publish_untrained(sessions, settings, seed=3)
    env = consumer_env()
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=env))
    with session_scope(sessions) as s:
        job_id = create_job(s, "train", {"steps": 4}).id

    client.enqueue_training(job_id)  # queued first: a FIFO consumer of both would take it first
    with start_worker_process(settings, env=env, queues=LIGHT) as light:
        client.enqueue_prediction(ids[5])
        wait_for(lambda: _predicted(sessions, ids[5], v0), 120, "the light worker's prediction",
                 light.log_path)
        client.enqueue_prediction(ids[6])
        wait_for(lambda: _predicted(sessions, ids[6], v0), 60, "a second prediction",
                 light.log_path)
        assert _training_messages(client.tasks.huey_for(TRAIN)) == 1, "the light worker took the training run"
        assert _state(sessions, job_id) == JobState.queued
        assert "facet-light" in light.log_path.read_text()
    assert light.popen.returncode == 0
    assert _training_messages(client.tasks.huey_for(TRAIN)) == 1 and _state(sessions, job_id) == JobState.queued

    with session_scope(sessions) as s:  # arrives now: a light worker's start-up sweep
        ids[7] = add_face(s, settings, 7)  # (worker.recovery) would have pre-annotated it
    with start_worker_process(settings, env=env, queues=TRAIN) as train:
        client.enqueue_prediction(ids[7])  # light work waits for a light worker
        wait_for(lambda: _state(sessions, job_id) in (JobState.succeeded, JobState.failed), 180,
                 "the train worker to run the job", train.log_path)
        assert _state(sessions, job_id) == JobState.succeeded
        assert _training_messages(client.tasks.huey_for(TRAIN)) == 0
        assert client.tasks.huey_for(LIGHT).pending_count() >= 1
        assert not _predicted(sessions, ids[7], v0)
    assert train.popen.returncode == 0


def test_a_default_worker_runs_one_consumer_per_queue_and_stops_both(settings, sessions):
    ids = add_faces(sessions, settings, {}, [1])
    v0 = publish_untrained(sessions, settings)
    env = consumer_env(FACET_WORKERS="1")
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=env))
    with start_worker_process(settings, env=env) as worker:
        client.enqueue_prediction(ids[1])
        wait_for(lambda: _predicted(sessions, ids[1], v0), 120, "a prediction", worker.log_path)
        log = worker.log_path.read_text()
        pids = {route: int(pid) for route, pid in
                re.findall(r"(train|light) \(pid (\d+)\)", log)}
        assert sorted(pids) == ["light", "train"] and worker.pid not in pids.values()
        assert "queue facet-train" in log and "queue facet-light" in log
    assert worker.popen.returncode == 0
    assert not any(pid_alive(pid) for pid in pids.values()), "a consumer outlived its parent"
    assert os.getpid() not in pids.values()


def test_when_one_consumer_ends_by_itself_the_supervisor_stops_the_other(monkeypatch):
    """run_routes: the train child fails (exit 3); the light one gets SIGINT; exit code 3."""
    import signal
    import time

    from worker import consumer

    def fake_run_route(settings, options, route):  # runs in the forked children
        if route == TRAIN:
            return 3
        signal.signal(signal.SIGINT, lambda *_: os._exit(0))
        time.sleep(60)
        return 5  # pragma: no cover - only when nobody stops it

    monkeypatch.setattr(consumer, "run_route", fake_run_route)
    start = time.monotonic()
    assert consumer.run_routes(None, None, (TRAIN, LIGHT)) == 3
    assert time.monotonic() - start < 30


def test_a_consumer_that_ignores_the_stop_is_killed_after_the_grace(monkeypatch):
    """run_routes: the light child ignores SIGINT; it is killed STOP_GRACE_S later."""
    import signal
    import time

    from worker import consumer

    def fake_run_route(settings, options, route):  # runs in the forked children
        if route == TRAIN:
            return 3
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        time.sleep(120)
        return 5  # pragma: no cover - only when nobody kills it

    monkeypatch.setattr(consumer, "run_route", fake_run_route)
    monkeypatch.setattr(consumer, "STOP_GRACE_S", 2)
    start = time.monotonic()
    assert consumer.run_routes(None, None, (TRAIN, LIGHT)) == 3
    assert time.monotonic() - start < 30
