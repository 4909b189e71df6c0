"""Facet's Huey tasks: plain functions of a :class:`~worker.context.WorkerContext` and ids.

Each function takes the worker's context first, then ids and paths (never objects), and opens
its own database sessions. :data:`TASKS` lists them with their Huey settings and their route
(:data:`worker.queue.ROUTES`: ``train`` for the GPU box, ``light`` for the others); an entry
point registers that table on its own instances, each task on the one of its route
(:func:`worker.queue.bind_tasks` in the consumer, :func:`worker.queue.declare_tasks` in the web
process). A task that starts another enqueues it by name through the context. The work itself
lives in small modules: :mod:`db.cache` (pre-annotations and SAM embeddings),
:mod:`worker.retraining` (retraining and publishing), :mod:`worker.trigger` (when to retrain by
itself), :mod:`worker.reaper` (runs whose worker is gone), :mod:`worker.recovery` (light work
whose message a killed worker took with it).

=================== ===== =========================== =====================================
task name           route arguments                   what it does
=================== ===== =========================== =====================================
facet.predict       light image_id                    cache the active model's pre-annotation
                                                      and uncertainty (queue priority)
facet.embed         light image_id, checkpoint, type  cache a SAM embedding (none without SAM)
facet.train         train job_id                      one retraining run, one at a time (a
                                                      lock on the train instance)
facet.score_all     light version_id                  after a new active model: fan out
                                                      score_batch over images needing work
facet.score_batch   light version_id, image_ids       pre-annotate and score those images
facet.check_retrain light (none)                      start a run after FACET_RETRAIN_EVERY
                                                      labels
facet.every_minute  light periodic                    enqueue check_retrain
facet.reap_runs     train periodic                    fail runs whose process died (on the
                                                      machine that trains) and free the lock
facet.redo_lost     light periodic, and at the start  enqueue the pre-annotations and SAM
                          of each light consumer      embeddings a killed worker lost
                                                      (:mod:`worker.recovery`)
=================== ===== =========================== =====================================

Each periodic task has one route, so it runs on one kind of worker: the reaper where training
runs (it recognises a dead run there by its process id), the retrain check and the sweep for
lost work on the light ones.

Training runs one at a time: the task holds the Huey lock :data:`TRAIN_LOCK` and also checks
the database for another running ``train`` job; a second run waits (the task is retried every
:data:`WAIT_RETRY_S` seconds, the job stays ``queued`` with a message saying why) and gives
up after ``FACET_TRAIN_TIMEOUT`` seconds of waiting.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from huey import crontab
from huey.exceptions import RetryTask, TaskLockedException
from sqlalchemy.orm import Session

from db.cache import (embedding_path, get_prediction, has_embedding, store_embedding,
                      store_prediction)
from db.engine import session_scope
from db.jobs import TRAIN_KIND, fail, get_job, running_job, set_progress
from db.models import Image, JobState, utcnow
from db.versions import active_version, checkpoint_file, get_version
from worker.queue import LIGHT, TRAIN, TaskSpec
from worker.reaper import reap_dead_runs
from worker.recovery import SWEEP_MINUTES, redo_lost_work
from worker.snapshot import needs_work_ids
from worker.trigger import maybe_create_training_job

if TYPE_CHECKING:
    from worker.context import WorkerContext

log = logging.getLogger("facet.worker")

TRAIN_LOCK = "facet.train"
"""Huey lock held by the running training task."""
CHECK_LOCK = "facet.retrain-check"
"""Huey lock held while deciding whether to start a run."""
WAIT_RETRY_S = 10
"""Seconds between two attempts of a training task waiting for the running one."""


def predict(ctx: WorkerContext, image_id: int) -> int | None:
    """Pre-annotate one image with the active model; returns the version id (None: no model)."""
    with session_scope(ctx.sessions) as session:
        version = active_version(session)
        if version is None or session.get(Image, image_id) is None:
            return None
        if get_prediction(session, image_id, version.id) is not None:
            return version.id
        path, version_id = checkpoint_file(ctx.settings, version), version.id
    predictor = ctx.predictors.get(path)
    with session_scope(ctx.sessions) as session:
        store_prediction(session, ctx.settings, predictor, session.get(Image, image_id),
                         get_version(session, version_id))
    return version_id


def embed(ctx: WorkerContext, image_id: int, checkpoint: str | None = None,
          model_type: str | None = None) -> str | None:
    """Cache a SAM embedding; returns its path relative to the data dir (None: no SAM).

    ``checkpoint`` / ``model_type`` travel with the task (``serve --sam-checkpoint/--sam-model``);
    without them the worker's ``FACET_SAM_CHECKPOINT`` / ``FACET_SAM_MODEL`` apply.
    """
    checkpoint = checkpoint or ctx.options.sam_checkpoint
    if not checkpoint:
        return None
    sam = ctx.sam.get(checkpoint, model_type or ctx.options.sam_model)
    settings = ctx.settings
    with session_scope(ctx.sessions) as session:
        image = session.get(Image, image_id)
        if image is None:
            return None
        if not has_embedding(session, settings, image_id, sam.key):
            store_embedding(session, settings, sam, image)
    return embedding_path(settings, sam.key, image_id).relative_to(settings.data_dir).as_posix()


def score_batch(ctx: WorkerContext, version_id: int, image_ids: list[int]) -> int:
    """Pre-annotate and score images with ``version_id`` if it is still active; count done."""
    with session_scope(ctx.sessions) as session:
        version = active_version(session)
        if version is None or version.id != version_id:
            return 0  # a newer model took over; its own score_all covers these images
        path = checkpoint_file(ctx.settings, version)
    done = 0
    for image_id in image_ids:
        with session_scope(ctx.sessions) as session:
            done += _score_one(ctx, session, image_id, version_id, path)
    return done


def _score_one(ctx: WorkerContext, session: Session, image_id: int, version_id: int,
               path: Path) -> bool:
    """Score one image with the active ``version_id`` (checkpoint ``path``); False: gone."""
    image, version = session.get(Image, image_id), get_version(session, version_id)
    if image is None or version is None:
        return False
    cached = get_prediction(session, image_id, version_id)
    if cached is not None and cached.uncertainty is not None:
        # e.g. a rollback to a version that saw this image before: no forward pass
        image.priority, image.scored_by_id = cached.uncertainty, version_id
    else:
        store_prediction(session, ctx.settings, ctx.predictors.get(path), image, version,
                         is_active=True)
    return True


def score_all(ctx: WorkerContext, version_id: int) -> int:
    """Fan out ``facet.score_batch`` over all images needing work; returns how many."""
    with session_scope(ctx.sessions) as session:
        version = active_version(session)
        if version is None or version.id != version_id:
            return 0
        ids = needs_work_ids(session)
    step = max(1, ctx.options.predict_chunk)
    for i in range(0, len(ids), step):
        ctx.enqueue("facet.score_batch", version_id, ids[i:i + step])
    return len(ids)


def train(ctx: WorkerContext, job_id: int) -> int | None:
    """Run the train job ``job_id``; returns the published version id. Then, when the new
    version became active, ``facet.score_all`` re-scores the queue with it."""
    from worker.retraining import run_training  # torch and the trainer: in the worker only

    with session_scope(ctx.sessions) as session:
        job = get_job(session, job_id)
        if job.state not in (JobState.queued, JobState.running):
            log.info("train job %s is %s; nothing to do", job_id, job.state.value)
            return None
    lock = ctx.huey_for(TRAIN).lock_task(TRAIN_LOCK)
    try:
        lock.acquire()
    except TaskLockedException:
        _wait_for_turn(ctx, job_id, "another training run holds the lock")
        return None
    try:
        with session_scope(ctx.sessions) as session:
            other = running_job(session, TRAIN_KIND)
        if other is not None and other.id != job_id:
            _wait_for_turn(ctx, job_id, f"training job {other.id} is running")
            return None
        result = run_training(ctx.sessions, ctx.settings, job_id, ctx.options)
    finally:
        lock.release()
    if result.activated:
        ctx.enqueue("facet.score_all", result.version_id)
    return result.version_id


def _wait_for_turn(ctx: WorkerContext, job_id: int, why: str) -> None:
    """Keep the job queued with a message and raise :class:`RetryTask` (again in
    :data:`WAIT_RETRY_S` seconds), or fail it after ``FACET_TRAIN_TIMEOUT`` seconds of waiting
    and return."""
    with session_scope(ctx.sessions) as session:
        job = get_job(session, job_id)
        waited = (utcnow() - job.created_at) if job.created_at else timedelta(0)
        if waited > timedelta(seconds=ctx.options.train_timeout_s):
            fail(session, job_id, f"gave up after waiting {int(waited.total_seconds())} s: {why}")
            return
        set_progress(session, job_id, 0.0, f"waiting: {why}")
    raise RetryTask(why, delay=WAIT_RETRY_S)


def check_retrain(ctx: WorkerContext) -> int | None:
    """Start a run (enqueue ``facet.train``) when enough new labels arrived; the new job id."""
    lock = ctx.huey_for(LIGHT).lock_task(CHECK_LOCK)
    try:
        lock.acquire()
    except TaskLockedException:
        return None  # another check is deciding right now
    try:
        with session_scope(ctx.sessions) as session:
            job = maybe_create_training_job(session, ctx.options.retrain_every,
                                            ctx.options.label_states)
            job_id = None if job is None else job.id
            new = 0 if job is None else job.params.get("new_labels", 0)
    finally:
        lock.release()
    if job_id is not None:
        log.info("%s new labels (FACET_RETRAIN_EVERY=%s): starting training job %s", new,
                 ctx.options.retrain_every, job_id)
        ctx.enqueue("facet.train", job_id)
    return job_id


def every_minute(ctx: WorkerContext) -> None:
    """Enqueue ``facet.check_retrain`` (light workers, every minute)."""
    ctx.enqueue("facet.check_retrain")


def reap_runs(ctx: WorkerContext) -> list[int]:
    """Fail runs whose process died (and free the training lock when none runs any more);
    their ids. Train workers, every minute."""
    with session_scope(ctx.sessions) as session:
        dead = reap_dead_runs(session)
        idle = running_job(session, TRAIN_KIND) is None
    if dead and idle:
        ctx.huey_for(TRAIN).flush_locks(TRAIN_LOCK)
    return dead


def redo_lost(ctx: WorkerContext) -> dict[str, int | str | None]:
    """Enqueue the pre-annotations and embeddings Huey lost with a killed worker (light
    consumers: at their start and every few minutes, :mod:`worker.recovery`); what it sent."""
    done = redo_lost_work(ctx)
    return {"predictions": done.predictions, "embeddings": done.embeddings,
            "messages": done.messages, "skipped": done.skipped}


TASKS: Mapping[str, TaskSpec] = MappingProxyType({
    "facet.predict": TaskSpec(predict, priority=30, retries=2, retry_delay_s=5),
    "facet.embed": TaskSpec(embed, priority=20, retries=1, retry_delay_s=5),
    "facet.score_batch": TaskSpec(score_batch, priority=10, retries=1, retry_delay_s=5),
    "facet.score_all": TaskSpec(score_all, priority=15),
    "facet.train": TaskSpec(train, priority=0, timeout_option="train_timeout_s", route=TRAIN),
    "facet.check_retrain": TaskSpec(check_retrain, priority=40),
    "facet.every_minute": TaskSpec(every_minute, periodic=crontab(minute="*")),
    "facet.reap_runs": TaskSpec(reap_runs, periodic=crontab(minute="*"), route=TRAIN),
    "facet.redo_lost": TaskSpec(redo_lost, priority=35,
                                periodic=crontab(minute=f"*/{SWEEP_MINUTES}")),
})
"""Every task by name with its Huey settings (priority: higher first; retries; seconds between
attempts; the train timeout from ``FACET_TRAIN_TIMEOUT``; every_minute, reap_runs and
redo_lost are periodic) and its route (light unless said). redo_lost runs before the work it
looks for (priority 35 > predict 30), so the messages still queued are seen as queued."""
