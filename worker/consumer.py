"""The consumer entry (``python app.py worker``): builds the Huey instance, binds the tasks, runs it.

:func:`run_consumer` gets the settings and options from :mod:`worker.cli`, builds one
:class:`~worker.context.WorkerContext` and binds :data:`worker.tasks.TASKS` to a fresh instance
(:func:`worker.queue.bind_tasks`). Huey's process worker type is used because task timeouts
only work there and because a training run should not share a GIL with pre-annotations; each
worker process sets torch's thread count (``FACET_TORCH_THREADS``) as it starts.

At start, before any worker process exists:

* a ``running`` training job whose run is gone is marked failed
  (:func:`worker.reaper.reap_dead_runs`): its worker process on this host no longer exists, or
  it has written no progress for 10 minutes (a run on another machine whose worker died). A
  live run — a second consumer's, here or on another machine — is left alone;
* the training lock is flushed when no training job is running any more (a SIGKILLed
  consumer leaves it set in the queue storage, and it would block every later run);
* checkpoint files a killed run left under the models dir are removed: temporary files of an
  unfinished atomic write, and ``job-<id>.pt`` of a failed job that no version points to.

So consumers may be added (on other machines too, given the same database URL, queue URL and
a shared data dir): embeddings and pre-annotations spread over them, and training runs one at
a time under the lock, on whichever consumer takes the job (task kinds are not routed to
particular consumers).
"""
from __future__ import annotations

import logging
import signal
import sys
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.database import open_database
from db.engine import session_scope
from db.jobs import TRAIN_KIND, running_job
from db.models import Job, JobState, ModelVersion
from db.settings import Settings
from worker.context import WorkerContext
from worker.options import WorkerOptions
from worker.queue import bind_tasks, make_huey
from worker.reaper import reap_dead_runs
from worker.tasks import TASKS, TRAIN_LOCK

log = logging.getLogger("facet.worker")


def fail_interrupted_jobs(sessions: sessionmaker[Session]) -> list[int]:
    """Mark failed the ``running`` training jobs whose run is gone (see the module docstring);
    returns their ids."""
    with session_scope(sessions) as session:
        return reap_dead_runs(session)


def remove_orphan_checkpoints(sessions: sessionmaker[Session], settings: Settings) -> list[str]:
    """Delete what killed runs left in ``settings.models_dir``; returns the removed file names.

    Only files this package writes are considered: ``job-<id>.pt`` (kept when a version row
    points to it or its job is not failed) and the ``.job-<id>.pt.*.tmp`` temporaries of
    :func:`core.imageio.write_atomic`.
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


def setup_worker_process(options: WorkerOptions) -> None:
    """Runs in each consumer worker process as it starts."""
    import multiprocessing

    # Huey starts its process workers as daemons, and a daemonic process may not start
    # children: torch's DataLoader worker processes (used for GPU training) would fail.
    # Only the consumer's copy of the flag matters for stopping this process.
    multiprocessing.current_process().daemon = False
    from model.devices import set_torch_threads  # torch only in the worker processes

    set_torch_threads(options.torch_threads)  # None: every core, at most 8


def clean_up_after_stopped_consumers(settings: Settings) -> bool:
    """Fail gone runs and remove their files (see the module docstring); True when a live
    training run remains (it holds the training lock)."""
    sessions = open_database(settings)
    failed = fail_interrupted_jobs(sessions)
    if failed:
        log.warning("marked %d interrupted job(s) failed: %s", len(failed), failed)
    orphans = remove_orphan_checkpoints(sessions, settings)
    if orphans:
        log.warning("removed checkpoint files of failed runs: %s", orphans)
    with session_scope(sessions) as session:
        training_elsewhere = running_job(session, TRAIN_KIND) is not None
    sessions.kw["bind"].dispose()  # workers fork next; each opens its own connections
    return training_elsewhere


def run_consumer(settings: Settings, options: WorkerOptions) -> int:
    """Prepare (see the module docstring) and run the consumer until it is stopped; exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    training_elsewhere = clean_up_after_stopped_consumers(settings)
    h = make_huey(settings)
    bind_tasks(h, TASKS, WorkerContext(settings, options))
    h.on_startup("facet.worker_setup")(partial(setup_worker_process, options))
    h.on_startup("facet.die_with_parent")(_die_with_parent)
    flushed = set() if training_elsewhere else h.flush_locks(TRAIN_LOCK)
    if flushed:
        log.warning("released stale locks left by a stopped consumer: %s", sorted(flushed))
    consumer = h.create_consumer(workers=options.workers, worker_type="process",
                                 periodic=True, check_worker_health=True)
    log.info("facet worker: data %s, queue %s, %d worker process(es)", settings.data_dir,
             settings.queue_url, options.workers)
    consumer.run()
    return 0
