"""The consumer entry (``python app.py worker``): builds the Huey instance and runs it.

Huey's process worker type is used because task timeouts only work there (NOTES.md) and
because a training run should not share a GIL with pre-annotations.

At start, before any worker process exists:

* every job still ``running`` in the database is marked failed ("worker stopped during the
  run: killed or crashed"): its process is gone, or this consumer would not be starting;
* the training lock is flushed (a SIGKILLed consumer leaves it set in the queue storage, and
  it would block every later run);
* checkpoint files a killed run left under the models dir are removed: temporary files of an
  unfinished atomic write, and ``job-<id>.pt`` of a failed job that no version points to.

Assumption behind both: **one consumer runs training at a time** for a given database and
queue. Scale out by adding consumers for embeddings and pre-annotations (they may run on other
machines, given the same database URL, queue URL and a shared data dir) — but starting a second
consumer while the first one trains would fail that run and release its lock. Put the training
consumer on the GPU machine and start the others with ``FACET_RETRAIN_EVERY=0`` if that matters.
"""
from __future__ import annotations

import logging
import signal
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.engine import session_scope
from db.jobs import fail
from db.models import Job, JobState
from db.models import ModelVersion
from db.settings import Settings
from worker.options import WorkerOptions

log = logging.getLogger("facet.worker")

STALE_REASON = "worker stopped during the run: killed or crashed"


def fail_interrupted_jobs(sessions: sessionmaker[Session]) -> list[int]:
    """Mark every ``running`` job failed with :data:`STALE_REASON`; returns their ids."""
    with session_scope(sessions) as session:
        ids = list(session.scalars(select(Job.id).where(Job.state == JobState.running)))
        for job_id in ids:
            fail(session, job_id, STALE_REASON)
    return ids


def remove_orphan_checkpoints(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """Delete what killed runs left in ``settings.models_dir``; returns the removed file names.

    Only files this package writes are considered: ``job-<id>.pt`` (kept when a version row
    points to it or its job is not failed) and the ``.job-<id>.pt.*.tmp`` temporaries of
    :func:`model.imageio.write_atomic`.
    """
    folder = settings.models_dir
    if not folder.is_dir():
        return []
    removed = [p for p in folder.glob(".job-*.pt.*.tmp") if p.is_file()]
    with session_scope(sessions) as session:
        used = {p for p in session.scalars(select(ModelVersion.checkpoint_path))}
        failed = set(session.scalars(select(Job.id).where(Job.state == JobState.failed)))
    for path in folder.glob("job-*.pt"):
        stem = path.stem.removeprefix("job-")
        rel = path.relative_to(settings.data_dir).as_posix()
        if stem.isdigit() and int(stem) in failed and rel not in used:
            removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    return sorted(p.name for p in removed)


def _die_with_parent() -> None:
    """In a Huey worker process: get SIGTERM when the consumer's main process dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_consumer(settings: Settings, options: WorkerOptions) -> int:
    """Prepare (see the module docstring) and run the consumer until it is stopped; exit code."""
    from db.database import open_database
    from worker.queue import make_huey
    from worker.tasks import TRAIN_LOCK, register_tasks

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    sessions = open_database(settings)
    failed = fail_interrupted_jobs(sessions)
    if failed:
        log.warning("marked %d interrupted job(s) failed: %s", len(failed), failed)
    orphans = remove_orphan_checkpoints(sessions, settings)
    if orphans:
        log.warning("removed checkpoint files of failed runs: %s", orphans)
    sessions.kw["bind"].dispose()  # workers fork next; each opens its own connections

    h = make_huey(settings)
    register_tasks(h, settings, options)
    h.on_startup("facet.die_with_parent")(_die_with_parent)
    flushed = h.flush_locks(TRAIN_LOCK)
    if flushed:
        log.warning("released stale locks left by a stopped consumer: %s", sorted(flushed))
    consumer = h.create_consumer(workers=options.workers, worker_type="process",
                                 periodic=True, check_worker_health=True)
    log.info("facet worker: data %s, queue %s, %d worker process(es)", settings.data_dir,
             settings.queue_url, options.workers)
    consumer.run()
    return 0
