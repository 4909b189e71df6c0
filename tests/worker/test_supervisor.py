"""``serve``'s worker child is started again when it dies, and not once the studio stops."""
from __future__ import annotations

import io
import subprocess
import sys
import time

import pytest

from db.cache import get_prediction
from db.engine import session_scope
from tests.worker.conftest import add_faces, consumer_env, publish_untrained, wait_for
from worker.child_process import WorkerProcess, start_worker_process
from worker.client import HueyTaskQueue
from worker.options import WorkerOptions
from worker.supervisor import WorkerSupervisor


def _sleeper() -> WorkerProcess:
    """A real child process that just waits (a stand-in for the consumer's start-up cost)."""
    popen = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                             start_new_session=True)
    return WorkerProcess(popen, log_path=None)


def test_a_dead_child_is_replaced_and_a_stopped_supervisor_starts_none():
    report = io.StringIO()
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        started.append(_sleeper())
        return started[-1]

    supervisor = WorkerSupervisor(start, poll_s=0.1, report=report)
    try:
        first = supervisor.current
        first.kill_group()
        wait_for(lambda: supervisor.restarts == 1 and supervisor.current.alive(), 10,
                 "a new child")
        assert supervisor.current.pid != first.pid
        assert f"(pid {first.pid}) exited with code -9" in report.getvalue()
    finally:
        supervisor.stop(timeout_s=2)
    assert not supervisor.current.alive()
    time.sleep(1.5)  # longer than poll + the first restart delay
    assert len(started) == 2 and supervisor.restarts == 1
    assert supervisor.stop() is not None  # twice is fine


def test_a_child_that_keeps_dying_is_restarted_less_and_less_often():
    def start() -> WorkerProcess:
        return WorkerProcess(subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]),
                             log_path=None)

    report = io.StringIO()
    supervisor = WorkerSupervisor(start, poll_s=0.05, report=report)
    try:
        wait_for(lambda: supervisor.restarts >= 2, 20, "two restarts")
    finally:
        supervisor.stop()
    words = report.getvalue()
    assert "exited with code 3" in words
    assert "starting a new one in 1 s" in words and "starting a new one in 2 s" in words


def test_a_failed_start_is_tried_again_and_a_child_stopped_on_purpose_stays_stopped():
    report = io.StringIO()
    calls = []

    def start() -> WorkerProcess:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(12, "Cannot allocate memory")  # fork failed once
        return _sleeper()

    supervisor = WorkerSupervisor(start, poll_s=0.05, report=report)
    try:
        supervisor.current.kill_group()
        wait_for(lambda: supervisor.restarts == 1 and supervisor.current.alive(), 20,
                 "a child after the failed start")
        assert "could not start a new worker (OSError(12" in report.getvalue()
        survivor = supervisor.current
        survivor.popen.terminate()  # SIGTERM: someone stopped it on purpose
        wait_for(lambda: "was stopped (signal 15)" in report.getvalue(), 10, "the notice")
        time.sleep(1.5)
        assert supervisor.restarts == 1 and supervisor.current is survivor
    finally:
        supervisor.stop(timeout_s=2)


@pytest.mark.slow
def test_a_killed_worker_under_serve_is_back_and_pre_annotates(settings, sessions):
    """The real consumer, killed with its whole process group (what the OOM killer does to a
    training worker), is started again and serves the queue."""
    ids = add_faces(sessions, settings, {1: "train"}, [5, 6])
    v0 = publish_untrained(sessions, settings, seed=3)
    client = HueyTaskQueue(settings, WorkerOptions.from_env(env=consumer_env()))
    report = io.StringIO()
    with WorkerSupervisor(lambda: start_worker_process(settings, env=consumer_env(),
                                                       stop_at_exit=False),
                          poll_s=0.2, report=report) as supervisor:
        first = supervisor.current
        client.enqueue_prediction(ids[5])
        wait_for(lambda: _predicted(sessions, ids[5], v0), 60, "a pre-annotation",
                 first.log_path)
        first.kill_group()
        wait_for(lambda: supervisor.restarts == 1, 30, "the restart", first.log_path)
        client.enqueue_prediction(ids[6])
        wait_for(lambda: _predicted(sessions, ids[6], v0), 60,
                 "a pre-annotation by the restarted worker", first.log_path)
        assert supervisor.current.alive() and supervisor.current.pid != first.pid
    assert not supervisor.current.alive()


def _predicted(sessions, image_id: int, version_id: int) -> bool:
    with session_scope(sessions) as s:
        return get_prediction(s, image_id, version_id) is not None
