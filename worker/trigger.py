"""When the loop retrains by itself: after ``retrain_every`` new labels (FACET_RETRAIN_EVERY);
the very first run, when a model is already active (the face prior), after
:data:`FIRST_RUN_LABELS` — it fine-tunes that model, so it need not wait for ten faces.

New labels are counted against the snapshot of the newest *succeeded* training job: images
whose current label (submitted or approved) was saved after that snapshot was taken. The check
runs in the worker — every minute as a periodic task, and right after a save when the web
process enqueues ``facet.check_retrain`` (:func:`worker.tasks.check_retrain`) — so the web side needs no training
logic and a missed notification only delays a run by a minute.

It never starts a second run while one is queued or running (the rule of
:func:`db.jobs.create_training_job`), and it does not retry a failed automatic run until a new
label arrives (so a run that fails for a lasting reason is not
restarted every minute).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.jobs import TRAIN_KIND, TrainingPendingError, create_training_job, latest_job
from db.models import Job, JobState, RevisionState
from db.versions import active_version
from worker.snapshot import (LABELLED_STATES, MIN_VAL, count_labels_since, labelled_rows,
                             max_label_revision_id)


FIRST_RUN_LABELS = MIN_VAL + 2
"""Labels that start the first run over an active model: one to train on, and the validation
split (:data:`worker.snapshot.MIN_VAL`) plus one."""


def last_trained_revision_id(session: Session) -> int:
    """``max_revision_id`` of the newest succeeded training run's snapshot; 0 before any."""
    for params in session.scalars(select(Job.params).where(
            Job.kind == TRAIN_KIND, Job.state == JobState.succeeded).order_by(Job.id.desc())):
        snap = (params or {}).get("snapshot") or {}
        if "max_revision_id" in snap:
            return int(snap["max_revision_id"])
    return 0


def new_label_count(session: Session,
                    states: tuple[RevisionState, ...] = LABELLED_STATES) -> int:
    """Labels (revisions in ``states``) saved since the last successful run's snapshot."""
    return count_labels_since(session, last_trained_revision_id(session), states)


def maybe_create_training_job(session: Session, retrain_every: int,
                              states: tuple[RevisionState, ...] = LABELLED_STATES) -> Job | None:
    """A queued ``train`` job when enough new labels arrived and no training job is queued or
    running, else ``None`` (flushed only).

    ``retrain_every`` 0 disables automatic runs; ``states``: what counts as a label
    (``FACET_TRAIN_ONLY_APPROVED``). The caller commits and enqueues the job.
    """
    if retrain_every <= 0:
        return None
    last_trained = last_trained_revision_id(session)
    new = count_labels_since(session, last_trained, states)
    needed = retrain_every
    if last_trained == 0 and active_version(session) is not None:
        needed = min(retrain_every, FIRST_RUN_LABELS)
    if new < needed or len(labelled_rows(session, states)) < MIN_VAL + 1:
        return None
    newest = max_label_revision_id(session, states)
    last = latest_job(session, TRAIN_KIND)
    if (last is not None and last.state == JobState.failed
            and (last.params or {}).get("trigger") == "auto"
            and (last.params or {}).get("labels_at_trigger") == newest):
        return None  # that exact data already failed once; wait for a new label
    try:
        return create_training_job(session, {"trigger": "auto", "new_labels": new,
                                             "labels_at_trigger": newest})
    except TrainingPendingError:
        return None  # a training job is already queued or running
