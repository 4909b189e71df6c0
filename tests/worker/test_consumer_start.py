"""worker/consumer.py: what a starting consumer cleans up after a killed one."""
from __future__ import annotations

import subprocess

from db.engine import session_scope
from db.jobs import create_job, finish, get_job, mark_running
from db.models import JobState
from worker.consumer import STALE_REASON, fail_interrupted_jobs
from worker.tasks import reap_dead_runs


def test_running_jobs_are_failed_with_the_reason_and_others_untouched(sessions):
    with session_scope(sessions) as s:
        queued = create_job(s, "train").id
        running = create_job(s, "train").id
        mark_running(s, running)
        done = create_job(s, "train").id
        mark_running(s, done)
        finish(s, done)
    assert fail_interrupted_jobs(sessions) == [running]
    with session_scope(sessions) as s:
        assert get_job(s, running).state == JobState.failed
        assert get_job(s, running).error == STALE_REASON
        assert get_job(s, queued).state == JobState.queued
        assert get_job(s, done).state == JobState.succeeded


def test_a_run_whose_process_died_is_failed_while_live_ones_are_kept(sessions):
    import os
    import socket
    dead = subprocess.Popen(["true"])
    dead.wait()
    with session_scope(sessions) as s:
        gone = create_job(s, "train", {"pid": dead.pid, "host": socket.gethostname()}).id
        mark_running(s, gone)
        alive = create_job(s, "train", {"pid": os.getpid(), "host": socket.gethostname()}).id
        mark_running(s, alive)
        elsewhere = create_job(s, "train", {"pid": dead.pid, "host": "another-machine"}).id
        mark_running(s, elsewhere)
    with session_scope(sessions) as s:
        assert reap_dead_runs(s) == [gone]
    with session_scope(sessions) as s:
        assert get_job(s, gone).state == JobState.failed
        assert str(dead.pid) in get_job(s, gone).error
        assert get_job(s, alive).state == JobState.running
        assert get_job(s, elsewhere).state == JobState.running
