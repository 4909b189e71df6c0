"""The consumer entry (``python app.py worker [--queues train,light]``): builds the Huey
instances, binds the tasks, runs a consumer per route it takes.

:func:`run_consumer` gets the settings, options and routes from :mod:`worker.cli`, builds one
:class:`~worker.context.WorkerContext` and binds :data:`worker.tasks.TASKS` to fresh instances,
one per route (:func:`worker.queue.bind_tasks`). Huey runs one consumer per instance, so:

* one route (``--queues train`` on the GPU box, ``--queues light`` on CPU boxes): the consumer
  of that instance runs in this process, as a plain worker always did;
* both (the default): this process forks one child per route, each running the consumer of
  its instance (:func:`run_routes`), and supervises them: a stop signal sent to it (SIGINT,
  SIGTERM, SIGHUP) is passed on to them, one from the terminal reaches them directly; when
  one child ends by itself the other is stopped; they die with it (Linux) and share its
  process group.

A consumer runs only its own instance's messages, so a light worker never takes a training run
and the run waits in the train queue for a train (or default) worker. The light consumer has
``--workers`` worker processes, the train consumer one (training runs one at a time). Each
consumer runs its route's periodic tasks: ``facet.reap_runs`` on the train route,
``facet.every_minute`` on the light one. Huey's process worker type is used because task
timeouts only work there and because a training run should not share a GIL with
pre-annotations; each worker process sets torch's thread count (``FACET_TORCH_THREADS``) as it
starts.

At the start of a train consumer, before any worker process exists:

* a ``running`` training job whose run is gone is marked failed
  (:func:`worker.reaper.reap_dead_runs`): its worker process on this host no longer exists, or
  it has written no progress for 10 minutes (a run on another machine whose worker died). A
  live run — a second consumer's, here or on another machine — is left alone;
* the training lock is flushed when no training job is running any more (a SIGKILLed
  consumer leaves it set in the queue storage, and it would block every later run);
* checkpoint files a killed run left under the models dir are removed: temporary files of an
  unfinished atomic write, and ``job-<id>.pt`` of a failed job that no version points to.

A light consumer, as it starts, enqueues ``facet.redo_lost`` (:mod:`worker.recovery`; its
scheduler also does every few minutes): the pre-annotations and SAM embeddings whose messages a
killed worker took with it (Huey removes a message before running it) are found from the
database and enqueued again, those still queued left alone.

So consumers may be added (on other machines too, given the same database URL, queue URL and
a shared data dir): embeddings and pre-annotations spread over the light consumers, and
training runs one at a time under the lock, on whichever train consumer takes the job.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
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
from worker.queue import LIGHT, ROUTES, TRAIN, bind_tasks, make_hueys
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


def run_consumer(settings: Settings, options: WorkerOptions,
                 routes: Sequence[str] = ROUTES) -> int:
    """Prepare (see the module docstring) and run the consumers of ``routes`` until they are
    stopped; exit code."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    if len(routes) == 1:
        return run_route(settings, options, routes[0])
    return run_routes(settings, options, routes)


def run_route(settings: Settings, options: WorkerOptions, route: str) -> int:
    """Run the consumer of ``route``'s instance in this process until it is stopped."""
    training_elsewhere = route == TRAIN and clean_up_after_stopped_consumers(settings)
    hueys = make_hueys(settings)
    tasks = bind_tasks(hueys, TASKS, WorkerContext(settings, options))
    h = hueys[route]
    h.on_startup("facet.worker_setup")(partial(setup_worker_process, options))
    h.on_startup("facet.die_with_parent")(_die_with_parent)
    if route == TRAIN and not training_elsewhere:
        flushed = h.flush_locks(TRAIN_LOCK)
        if flushed:
            log.warning("released stale locks left by a stopped consumer: %s", sorted(flushed))
    if route == LIGHT:
        tasks.enqueue("facet.redo_lost")  # work a killed worker took with it (worker.recovery)
    workers = 1 if route == TRAIN else options.workers   # one training run at a time, ever
    consumer = h.create_consumer(workers=workers, worker_type="process",
                                 periodic=True, check_worker_health=True)
    log.info("facet worker: queue %s (%s), data %s, %d worker process(es)", h.name,
             settings.queue_url, settings.data_dir, workers)
    consumer.run()
    return 0


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_GRACE_S = 15
"""Seconds a consumer has to stop after its sibling ended by itself, before it is killed (its
running job, if any, is then failed by the next train consumer's start-up clean-up)."""


def run_routes(settings: Settings, options: WorkerOptions, routes: Sequence[str]) -> int:
    """Fork a child running :func:`run_route` for each of ``routes`` and supervise them (see
    the module docstring); the first non-zero exit code of a child, else 0."""
    children: dict[int, str] = {}
    for route in routes:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; covered by the consumer process tests
            code = 1
            # A worker started from a non-interactive shell's background job inherits SIGINT
            # ignored; the supervisor stops a child with SIGINT, so it must never be ignored
            # (before Huey installs its own handler it raises KeyboardInterrupt and ends here).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())   # nor blocked, whatever the parent had
            try:
                _die_with_parent()
                code = run_route(settings, options, route)
            except BaseException:
                log.exception("the %s consumer failed", route)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = route
    log.info("facet worker: consumers %s", ", ".join(f"{r} (pid {p})"
                                                    for p, r in children.items()))
    waited = {*_STOP_SIGNALS, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    stopping, code, kill_at = False, 0, None
    try:
        while children:
            for pid, rc in _reap(children):
                route = children.pop(pid)
                if rc and not code:
                    code = rc if rc > 0 else 1
                if not stopping:
                    log.error("the %s consumer stopped by itself (exit %s): stopping the others",
                              route, rc)
                    stopping = True
                    _signal_all(children, signal.SIGINT)
                    kill_at = time.monotonic() + STOP_GRACE_S
            if not children:
                break
            if kill_at is not None and time.monotonic() > kill_at:
                log.error("consumers %s did not stop within %d s: killing them",
                          sorted(children.values()), STOP_GRACE_S)
                _signal_all(children, signal.SIGKILL)
                kill_at = None
            info = signal.sigtimedwait(waited, 1.0)
            if info is None or info.si_signo == signal.SIGCHLD:
                continue
            if info.si_code <= 0:
                # sent by a process (kill, our WorkerProcess.stop): pass it on. A signal from
                # the terminal (SI_KERNEL) reached the children in our process group already.
                _signal_all(children, info.si_signo)
            stopping = stopping or info.si_signo != signal.SIGHUP
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)
    return code


def _reap(children: dict[int, str]) -> list[tuple[int, int]]:
    """The children of ``children`` that ended, with their exit codes (negative: a signal)."""
    ended = []
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            ended.append((pid, os.waitstatus_to_exitcode(status)))
    return ended


def _signal_all(children: dict[int, str], signum: int) -> None:
    for pid in children:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
