"""worker/consumer.py: what a starting consumer cleans up after a killed one."""
from __future__ import annotations

import subprocess

from db.engine import session_scope
from db.jobs import create_job, finish, get_job, mark_running
from db.models import JobState
from worker.consumer import fail_interrupted_jobs
from worker.reaper import reap_dead_runs


def test_at_start_only_gone_runs_are_failed_and_a_live_one_keeps_running(sessions):
    import os
    import socket
    from datetime import timedelta

    from db.models import Job, utcnow

    dead = subprocess.Popen(["true"])
    dead.wait()
    here = socket.gethostname()
    with session_scope(sessions) as s:
        queued = create_job(s, "train").id
        done = create_job(s, "train").id
        mark_running(s, done)
        finish(s, done)
        killed = create_job(s, "train", {"pid": dead.pid, "host": here}).id   # consumer killed
        live = create_job(s, "train", {"pid": os.getpid(), "host": here}).id  # a 2nd consumer's
        remote = create_job(s, "train", {"pid": 1, "host": "gpu-box"}).id     # beating elsewhere
        silent = create_job(s, "train", {"pid": 1, "host": "gpu-box"}).id     # died elsewhere
        for job_id in (killed, live, remote, silent):
            mark_running(s, job_id)
        s.get(Job, silent).updated_at = utcnow() - timedelta(minutes=11)
    assert sorted(fail_interrupted_jobs(sessions)) == sorted([killed, silent])
    with session_scope(sessions) as s:
        assert "died during the run" in get_job(s, killed).error
        assert "no progress for 11 min" in get_job(s, silent).error
        assert "gpu-box" in get_job(s, silent).error
        assert get_job(s, live).state == get_job(s, remote).state == JobState.running
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


def test_files_of_killed_runs_are_removed_and_published_ones_kept(settings, sessions):
    from db.jobs import fail
    from db.versions import add_version
    from worker.consumer import remove_orphan_checkpoints

    with session_scope(sessions) as s:
        published = create_job(s, "train").id
        mark_running(s, published)
        finish(s, published)
        add_version(s, f"models/job-{published}.pt", {}, {}, job_id=published)
        crashed = create_job(s, "train").id
        mark_running(s, crashed)
        fail(s, crashed, "killed")
        running = create_job(s, "train").id
        mark_running(s, running)
    folder = settings.models_dir
    folder.mkdir(parents=True)
    names = [f"job-{published}.pt", f"job-{crashed}.pt", f"job-{running}.pt",
             f".job-{crashed}.pt.abc123.tmp", "v0.pt", "notes.txt"]
    for name in names:
        (folder / name).write_bytes(b"x")
    removed = remove_orphan_checkpoints(sessions, settings)
    assert removed == sorted([f"job-{crashed}.pt", f".job-{crashed}.pt.abc123.tmp"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(set(names) - set(removed))
