"""The Huey tasks, registered on an instance by :func:`register_tasks` (no import-time global).

Every task takes ids and paths, never objects, and opens its own database sessions (the
edges, DESIGN.md). The work itself lives in small modules: :mod:`worker.infer` (pre-annotation
and uncertainty), :mod:`worker.sam_cache` (SAM), :mod:`worker.retraining` (retraining and publishing),
:mod:`worker.trigger` (when to retrain by itself), :mod:`worker.reaper` (runs whose
worker is gone).

=================== =========================== ===========================================
task name           arguments                   what it does
=================== =========================== ===========================================
facet.predict       image_id                    cache the active model's pre-annotation and
                                                uncertainty (queue priority) of one image
facet.embed         image_id, checkpoint, type  cache a SAM embedding (skipped without SAM)
facet.train         job_id                      one retraining run, one at a time (a lock)
facet.score_all     version_id                  after a new active model: fan out score_batch
                                                over every image still needing work
facet.score_batch   version_id, image_ids       pre-annotate and score those images
facet.check_retrain (none)                      start a run after FACET_RETRAIN_EVERY labels
facet.every_minute  periodic                    check_retrain + fail runs whose process died
=================== =========================== ===========================================

Training runs one at a time: the task holds the Huey lock ``facet.train`` and also checks
the database for another running ``train`` job; a second run waits (the task is retried every
:data:`WAIT_RETRY_S` seconds, the job stays ``queued`` with a message saying why) and gives
up after ``FACET_TRAIN_TIMEOUT`` seconds of waiting.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import huey
from huey import crontab
from huey.api import TaskWrapper
from huey.exceptions import RetryTask, TaskLockedException
from sqlalchemy.orm import Session, sessionmaker

from db.cache import embedding_path, get_prediction, has_embedding, store_embedding, store_prediction
from db.engine import session_scope
from db.jobs import TRAIN_KIND, fail, get_job, running_job, set_progress
from db.models import Image, JobState, utcnow
from db.settings import Settings
from db.versions import active_version, get_version
from worker.sam_cache import SamCache
from worker.infer import PredictorCache, checkpoint_file, needs_prediction
from worker.options import WorkerOptions
from worker.reaper import reap_dead_runs, running_job_count
from worker.snapshot import needs_work_ids
from worker.trigger import maybe_create_training_job

log = logging.getLogger("facet.worker")

TRAIN_LOCK = "facet.train"
CHECK_LOCK = "facet.retrain-check"
WAIT_RETRY_S = 10
"""Seconds between two attempts of a training task waiting for the running one."""


class Resources:
    """What tasks share inside one worker process: sessions and loaded models.

    Created by :func:`register_tasks`, owned by the Huey instance's closures. After a fork
    (the process worker type) the child builds its own engine and caches on first use.
    """

    def __init__(self, settings: Settings, options: WorkerOptions,
                 sessions: sessionmaker[Session] | None = None,
                 sam_builders: Mapping | None = None) -> None:
        self.settings = settings
        self.options = options
        self._given = sessions
        self._sam_builders = sam_builders
        self._pid = -1
        self._sessions: sessionmaker[Session] | None = None
        self._predictors: PredictorCache | None = None
        self._sam: SamCache | None = None

    def _fresh(self) -> None:
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        if self._given is not None:
            self._sessions = self._given
        else:
            from db.database import open_database
            self._sessions = open_database(self.settings)
        self._predictors = PredictorCache(device=self.options.device,
                                          threads=self.options.torch_threads)
        self._sam = SamCache(self._sam_builders)

    @property
    def sessions(self) -> sessionmaker[Session]:
        self._fresh()
        assert self._sessions is not None
        return self._sessions

    @property
    def predictors(self) -> PredictorCache:
        self._fresh()
        assert self._predictors is not None
        return self._predictors

    @property
    def sam(self) -> SamCache:
        self._fresh()
        assert self._sam is not None
        return self._sam


@dataclass(frozen=True)
class Tasks:
    """Handles of the registered tasks; call one to enqueue it (``tasks.predict(7)``)."""

    huey: huey.Huey
    resources: Resources
    predict: TaskWrapper
    embed: TaskWrapper
    train: TaskWrapper
    score_all: TaskWrapper
    score_batch: TaskWrapper
    check_retrain: TaskWrapper
    every_minute: TaskWrapper


def register_tasks(h: huey.Huey, settings: Settings, options: WorkerOptions | None = None, *,
                   sessions: sessionmaker[Session] | None = None,
                   sam_builders: Mapping | None = None) -> Tasks:
    """Register Facet's tasks on ``h`` and return their handles.

    ``options``: default :meth:`WorkerOptions.from_env`. ``sessions``: a session factory to use
    (tests); by default each worker process opens the database of ``settings`` itself.
    ``sam_builders``: SAM architectures by model type (tests pass tiny ones).
    """
    options = options or WorkerOptions.from_env()
    res = Resources(settings, options, sessions, sam_builders)

    @h.on_startup("facet.worker_setup")
    def worker_setup() -> None:
        """Runs in each consumer worker process as it starts."""
        import multiprocessing

        # Huey starts its process workers as daemons, and a daemonic process may not start
        # children: torch's DataLoader worker processes (used for GPU training) would fail.
        # Only the consumer's copy of the flag matters for stopping this process.
        multiprocessing.current_process().daemon = False
        if options.torch_threads:
            import torch
            torch.set_num_threads(options.torch_threads)

    @h.task(name="facet.predict", priority=30, retries=2, retry_delay=5)
    def predict(image_id: int) -> int | None:
        """Pre-annotate one image with the active model; returns the version id (None: no model)."""
        with session_scope(res.sessions) as session:
            version = active_version(session)
            if version is None or session.get(Image, image_id) is None:
                return None
            if not needs_prediction(session, image_id, version.id):
                return version.id
            path, version_id = checkpoint_file(settings, version), version.id
        predictor = res.predictors.get(path)
        with session_scope(res.sessions) as session:
            store_prediction(session, settings, predictor, session.get(Image, image_id),
                             get_version(session, version_id))
        return version_id

    @h.task(name="facet.embed", priority=20, retries=1, retry_delay=5)
    def embed(image_id: int, checkpoint: str | None = None,
              model_type: str | None = None) -> str | None:
        """Cache a SAM embedding; returns its path relative to the data dir (None: no SAM)."""
        checkpoint = checkpoint or options.sam_checkpoint
        if not checkpoint:
            return None
        sam = res.sam.get(checkpoint, model_type or options.sam_model)
        with session_scope(res.sessions) as session:
            image = session.get(Image, image_id)
            if image is None:
                return None
            if not has_embedding(session, settings, image_id, sam.key):
                store_embedding(session, settings, sam, image)
        return embedding_path(settings, sam.key, image_id).relative_to(settings.data_dir).as_posix()

    @h.task(name="facet.score_batch", priority=10, retries=1, retry_delay=5)
    def score_batch(version_id: int, image_ids: list[int]) -> int:
        """Pre-annotate and score images with ``version_id`` if it is still active; count done."""
        with session_scope(res.sessions) as session:
            version = active_version(session)
            if version is None or version.id != version_id:
                return 0  # a newer model took over; its own score_all covers these images
            path = checkpoint_file(settings, version)
        done = 0
        for image_id in image_ids:
            with session_scope(res.sessions) as session:
                image, version = session.get(Image, image_id), get_version(session, version_id)
                if image is None or version is None:
                    continue
                cached = get_prediction(session, image_id, version_id)
                if cached is not None and cached.uncertainty is not None:
                    # e.g. a rollback to a version that saw this image before: no forward pass
                    image.priority, image.scored_by_id = cached.uncertainty, version_id
                else:
                    store_prediction(session, settings, res.predictors.get(path), image, version,
                                     is_active=True)
                done += 1
        return done

    @h.task(name="facet.score_all", priority=15)
    def score_all(version_id: int) -> int:
        """Fan out :func:`score_batch` over all images needing work; returns how many."""
        with session_scope(res.sessions) as session:
            version = active_version(session)
            if version is None or version.id != version_id:
                return 0
            ids = needs_work_ids(session)
        step = max(1, options.predict_chunk)
        for i in range(0, len(ids), step):
            score_batch(version_id, ids[i:i + step])
        return len(ids)

    def _wait(job_id: int, why: str) -> None:
        """Keep the job queued with a message and retry later, or give up after the timeout."""
        with session_scope(res.sessions) as session:
            job = get_job(session, job_id)
            waited = (utcnow() - job.created_at) if job.created_at else timedelta(0)
            if waited > timedelta(seconds=options.train_timeout_s):
                fail(session, job_id, f"gave up after waiting {int(waited.total_seconds())} s: {why}")
                return
            set_progress(session, job_id, 0.0, f"waiting: {why}")
        raise RetryTask(why, delay=WAIT_RETRY_S)

    @h.task(name="facet.train", priority=0, timeout=options.train_timeout_s)
    def train(job_id: int) -> int | None:
        """Run the train job ``job_id``; returns the published version id."""
        from worker.retraining import run_training

        with session_scope(res.sessions) as session:
            job = get_job(session, job_id)
            if job.state not in (JobState.queued, JobState.running):
                log.info("train job %s is %s; nothing to do", job_id, job.state.value)
                return None
        lock = h.lock_task(TRAIN_LOCK)
        try:
            lock.acquire()
        except TaskLockedException:
            _wait(job_id, "another training run holds the lock")
            return None
        try:
            with session_scope(res.sessions) as session:
                other = running_job(session, TRAIN_KIND)
            if other is not None and other.id != job_id:
                _wait(job_id, f"training job {other.id} is running")
                return None
            result = run_training(res.sessions, settings, job_id, options)
        finally:
            lock.release()
        if result.activated:
            score_all(result.version_id)
        return result.version_id

    @h.task(name="facet.check_retrain", priority=40)
    def check_retrain() -> int | None:
        """Start a run when enough new labels arrived; returns the new job id."""
        lock = h.lock_task(CHECK_LOCK)
        try:
            lock.acquire()
        except TaskLockedException:
            return None  # another check is deciding right now
        try:
            with session_scope(res.sessions) as session:
                job = maybe_create_training_job(session, options.retrain_every)
                job_id = None if job is None else job.id
                new = 0 if job is None else job.params.get("new_labels", 0)
        finally:
            lock.release()
        if job_id is not None:
            log.info("%s new labels (FACET_RETRAIN_EVERY=%s): starting training job %s", new,
                     options.retrain_every, job_id)
            train(job_id)
        return job_id

    @h.periodic_task(crontab(minute="*"), name="facet.every_minute")
    def every_minute() -> None:
        """Fail runs whose process died, then check whether to retrain."""
        with session_scope(res.sessions) as session:
            dead = reap_dead_runs(session)
        if dead and running_job_count(res.sessions) == 0:
            h.flush_locks(TRAIN_LOCK)
        check_retrain()

    return Tasks(h, res, predict, embed, train, score_all, score_batch, check_retrain,
                 every_minute)

