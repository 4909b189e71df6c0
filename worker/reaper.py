"""Training runs whose worker is gone: found by their job rows, failed, so the next run may start.

Huey removes a task from the queue before it runs, and the locks of a killed worker stay set,
so recovery comes from the ``train`` job rows: a running
job records the host and process id of its worker and writes progress (``updated_at``, the
heartbeat) every second while it trains. A starting consumer and the ``facet.every_minute``
task both apply :func:`reap_dead_runs`.
"""
from __future__ import annotations

import os
import socket

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.jobs import TRAIN_KIND, fail
from db.models import Job, JobState, utcnow

STALE_AFTER_S = 600.0
"""A running train job with no progress written for this long is taken for dead. Training
writes a progress row every second; scoring the validation split and publishing write none,
and take seconds (minutes for a large split on a CPU)."""


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead_runs(session: Session, stale_after_s: float = STALE_AFTER_S) -> list[int]:
    """Fail ``running`` train jobs whose run is gone; their ids.

    Gone: the worker process it recorded on this host no longer exists (killed alone by the
    OOM killer, or with its whole consumer), or it has written no progress (``updated_at``,
    the heartbeat) for ``stale_after_s`` seconds — which also covers a run on another machine
    whose worker died. A run that is alive, here or elsewhere, is left alone, so a second
    consumer may start while the first one trains.
    """
    host, now = socket.gethostname(), utcnow()
    reaped = []
    for job in session.scalars(select(Job).where(Job.kind == TRAIN_KIND,
                                                 Job.state == JobState.running)):
        params = job.params or {}
        pid = params.get("pid")
        beat = job.updated_at or job.started_at or job.created_at
        silent_s = (now - beat).total_seconds() if beat is not None else float("inf")
        if params.get("host") == host and isinstance(pid, int) and not pid_alive(pid):
            fail(session, job.id, f"worker process {pid} died during the run (killed or crashed)")
        elif silent_s > stale_after_s:
            fail(session, job.id, f"no progress for {silent_s / 60:.0f} min: its worker on "
                                  f"{params.get('host') or 'an unknown host'} is gone")
        else:
            continue
        reaped.append(job.id)
    return reaped
