"""Work Huey lost, found again from the database: pre-annotations and SAM embeddings.

Huey removes a message from the queue before a worker runs it, so a worker killed mid-task
(SIGKILL, the OOM killer, a power cut) loses it and nobody sends it again: the
``facet.predict`` of an uploaded image, a ``facet.score_batch`` of the fan-out after a new
model, a ``facet.embed``. The database knows what should exist, so :func:`redo_lost_work` (the
``facet.redo_lost`` task) compares it with what the light queue still holds and enqueues the
difference:

* **wanted**: every image that needs work (no submitted or approved label,
  :func:`worker.snapshot.needs_work_ids` — the images ``facet.score_all`` covers) has a
  pre-annotation by the active version and was scored by it (``Image.scored_by_id``); when
  this worker has a SAM checkpoint (``FACET_SAM_CHECKPOINT``; ``serve`` passes its own to the
  worker it starts), each also has an embedding row for that model;
* **covered**: the light queue's pending and scheduled (retrying) messages: ``facet.predict``
  and ``facet.embed`` of an image, ``facet.score_batch`` of the active version, and a
  ``facet.score_all`` of the active version (which covers every pre-annotation);
* **enqueued**: wanted, missing and not covered: ``facet.score_batch`` of the active version
  in chunks (it skips the forward pass where a pre-annotation is cached, and sets the score),
  ``facet.embed`` per image with this worker's checkpoint.

When: a light consumer enqueues the task as it starts (:func:`worker.consumer.run_route`), so a
restart after a crash redoes the lost work, and its scheduler every :data:`SWEEP_MINUTES`
minutes, because Huey restarts a worker process that died alone without a consumer restart.

Cheap and idempotent: three queries at most (none without a model or SAM); the queue is
read only when it holds at most :data:`SCAN_LIMIT` messages (a longer queue is busy: the next
sweep looks again), and one sweep adds at most what fills it up to that many. A second sweep
right after the first finds the first one's messages pending and adds nothing. A message that
a worker is running at that moment is neither pending nor done, so a sweep may send it again;
the copy then finds the result cached and costs a lookup (or, if both run at once, that one
chunk is computed twice).

Not a retry loop for failing work: an image whose pre-annotation keeps failing (its file is
gone, the disk is full) is sent again by each sweep, once, and fails again, until the cause
is fixed; then the work is done without anyone re-sending it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Image, Prediction, SamEmbedding
from db.versions import active_version
from worker.queue import LIGHT
from worker.snapshot import needs_work_ids

if TYPE_CHECKING:
    from huey import Huey

    from worker.context import WorkerContext

log = logging.getLogger("facet.worker.recovery")

SCAN_LIMIT = 2000
"""Most queued light messages a sweep reads; with more, it leaves the queue alone."""
SWEEP_MINUTES = 5
"""Minutes between two periodic sweeps of a light consumer."""


@dataclass
class Covered:
    """What the queued messages of the light queue will do."""

    all_predictions: bool = False
    """A ``facet.score_all`` of the active version is queued."""
    predictions: set[int] = field(default_factory=set)
    embeddings: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Redone:
    """What one sweep enqueued (``skipped``: why it looked at nothing, else ``None``)."""

    predictions: int = 0
    embeddings: int = 0
    messages: int = 0
    skipped: str | None = None


def missing_predictions(session: Session, version_id: int,
                        needing_work: list[int]) -> list[int]:
    """Of ``needing_work`` (:func:`needs_work_ids`), the images without a pre-annotation by
    ``version_id`` or without its score."""
    cached = select(Prediction.image_id).where(Prediction.model_version_id == version_id)
    ready = set(session.scalars(select(Image.id).where(Image.scored_by_id == version_id,
                                                       Image.id.in_(cached))))
    return [i for i in needing_work if i not in ready]


def missing_embeddings(session: Session, model_key: str, needing_work: list[int]) -> list[int]:
    """Of ``needing_work``, the images without an embedding row for the SAM model
    ``model_key`` (rows only: a file removed by hand is recomputed when an annotator clicks)."""
    have = set(session.scalars(select(SamEmbedding.image_id)
                               .where(SamEmbedding.sam_model == model_key)))
    return [i for i in needing_work if i not in have]


def queued_work(huey: Huey, version_id: int | None) -> Covered:
    """What the pending and scheduled messages of ``huey`` (the light instance) cover."""
    covered = Covered()
    for task in chain(huey.pending(), huey.scheduled()):
        args = tuple(task.args or ())
        if task.name == "facet.predict" and args:
            covered.predictions.add(int(args[0]))
        elif task.name == "facet.score_batch" and len(args) == 2 and args[0] == version_id:
            covered.predictions.update(int(i) for i in args[1])
        elif task.name == "facet.score_all" and args and args[0] == version_id:
            covered.all_predictions = True
        elif task.name == "facet.embed" and args:
            covered.embeddings.add(int(args[0]))
    return covered


def redo_lost_work(ctx: WorkerContext) -> Redone:
    """Enqueue the pre-annotations and embeddings that are missing and not queued (see the
    module docstring); what it enqueued."""
    huey = ctx.huey_for(LIGHT)
    queued = huey.pending_count() + huey.scheduled_count()
    if queued > SCAN_LIMIT:
        return Redone(skipped=f"{queued} messages queued")
    room = SCAN_LIMIT - queued
    key = _sam_key(ctx)
    with session_scope(ctx.sessions) as session:
        version = active_version(session)
        version_id = None if version is None else version.id
        if version_id is None and key is None:
            return Redone()
        needing = needs_work_ids(session)
        predict = [] if version_id is None else missing_predictions(session, version_id,
                                                                    needing)
        embed = [] if key is None else missing_embeddings(session, key, needing)
    if not predict and not embed:
        return Redone()
    covered = queued_work(huey, version_id)
    predict = [] if covered.all_predictions else [i for i in predict
                                                  if i not in covered.predictions]
    embed = [i for i in embed if i not in covered.embeddings]
    step = max(1, ctx.options.predict_chunk)
    chunks = [predict[i:i + step] for i in range(0, len(predict), step)][:room]
    for chunk in chunks:
        ctx.enqueue("facet.score_batch", version_id, chunk)
    embed = embed[:room - len(chunks)]
    for image_id in embed:
        ctx.enqueue("facet.embed", image_id, ctx.options.sam_checkpoint, ctx.options.sam_model)
    done = Redone(sum(len(c) for c in chunks), len(embed), len(chunks) + len(embed))
    if done.messages:
        log.warning("re-enqueued lost work: %d pre-annotation(s) by version %s in %d "
                    "message(s), %d embedding(s)", done.predictions, version_id, len(chunks),
                    done.embeddings)
    return done


def _sam_key(ctx: WorkerContext) -> str | None:
    """The cache key of this worker's SAM checkpoint; ``None`` without one (or when it cannot
    be read: logged, and embeddings are left alone)."""
    if not ctx.options.sam_checkpoint:
        return None
    try:
        return ctx.sam.key_for(ctx.options.sam_checkpoint, ctx.options.sam_model)
    except OSError as err:
        log.warning("SAM checkpoint %s unreadable (%s): lost embeddings are not looked for",
                    ctx.options.sam_checkpoint, err)
        return None
