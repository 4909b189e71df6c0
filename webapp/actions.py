"""The studio's use cases, each written once: open an image, save, submit, approve, reject,
restore, activate a model, add an image, queue training, delete an image.

Each one checks the actor's role, does its database work in **one** session, and then its
queue follow-up (pre-annotate a new image, rescore after an activation, let the worker count
new labels). The REST routes (:mod:`webapp.api`) and the UI handlers (:mod:`webapp.ui`) are
adapters around these: parse, call, render. Errors are :class:`core.errors.FacetError`
subclasses: :class:`NotFound` for a missing image or version, :class:`NoWorkerError` when
background work is asked of a server without a queue, ``AccessDenied`` for roles.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from core.errors import FacetError
from core.imageio import BadImageError, decode_label_png, encode_label_png
from db.annotation_queue import next_image as lease_next_image
from db.annotation_queue import release as release_lease
from db.annotation_queue import upcoming_images
from db.cache import get_prediction
from db.deletion import DeletionRecord, ImageGone, checkpoint_wal, remove_files
from db.deletion import delete_image as delete_image_rows
from db.images import add_image as store_image
from db.jobs import TrainingPendingError, create_training_job, fail
from db.models import Image, Origin, RevisionState, utcnow
from db.review import approve, reject, submit
from db.revisions import current_number, history, latest_revision, restore_revision, save_revision
from db.versions import activate, active_version, add_version, get_version
from webapp.auth import Actor
from webapp.records import (AddedImage, Decision, OpenedImage, RevisionInfo, SaveOutcome,
                            StartPoint, VersionInfo)
from webapp.studio import Studio

ANY_REVISION = "*"
"""A save's base that means "over whatever revision is current" (``If-Match: *``)."""

Base = int | str | None
"""A save's base revision: a number, ``None`` (there was none yet) or :data:`ANY_REVISION`."""


class NotFound(FacetError):
    """No image or model version with that id."""


class NoWorkerError(FacetError):
    """The server has no task queue, so background work cannot run."""


__all__ = ["ANY_REVISION", "NoWorkerError", "NotFound", "TrainingPendingError",
           "activate_version", "add_active_version", "add_image", "decide", "delete_image",
           "next_image", "open_image", "queue_training", "restore", "save_labels",
           "submit_labels"]


def image_in(session: Session, image_id: int) -> Image:
    """The image row, or :class:`NotFound`."""
    image = session.get(Image, image_id)
    if image is None:
        raise NotFound(f"no image with id {image_id}")
    return image


def _history(session: Session, image_id: int) -> tuple[RevisionInfo, ...]:
    return tuple(RevisionInfo.of(rev) for rev in history(session, image_id))


# ---------------------------------------------------------------- reading
def _start_point(studio: Studio, session: Session, image: Image) -> StartPoint:
    """The newest revision, else the active model's prediction, else an empty map."""
    rev = latest_revision(session, image.id)
    if rev is not None:
        labels = decode_label_png(rev.label_png, studio.labels.num_classes)
        made_by = get_version(session, rev.model_version_id) if rev.model_version_id else None
        info = RevisionInfo.of(rev)
        return StartPoint(image.id, labels, info.number, "revision", info,
                          VersionInfo.of(made_by) if made_by is not None else None)
    pred = studio.predictions.prediction_in(session, image)
    return StartPoint(image.id, pred.labels, None, "model" if pred.version else "empty", None,
                      pred.version)


def _held_by_other(image: Image, actor: Actor) -> datetime | None:
    """End of another user's live lease on ``image`` (naive UTC), else ``None``."""
    if image.lease_user_id in (None, actor.user_id) or image.lease_until is None:
        return None
    return image.lease_until if image.lease_until > utcnow() else None


def _opened(studio: Studio, session: Session, image: Image, actor: Actor) -> OpenedImage:
    sam_ready = None if studio.sam is None else studio.sam.ready_in(session, image.id)
    return OpenedImage(
        image.id, image.source_name, (image.width, image.height),
        (image.width / image.label_width, image.height / image.label_height),
        _start_point(studio, session, image), _history(session, image.id),
        studio.predictions.active_in(session), sam_ready, _held_by_other(image, actor))


EMBED_AHEAD = 3
"""After serving an image from the queue, the next this many get their SAM embeddings first."""


def _embed_ahead(studio: Studio, session, actor: Actor, served: int,
                 skipped: tuple[int, ...]) -> None:
    """Put the SAM embeddings of the images this annotator will get next (queue order) ahead
    of the worker's other embeddings, so SAM is ready when they open them."""
    if studio.sam is None or studio.tasks is None or actor.user_id is None:
        return
    for image_id in upcoming_images(session, actor.user_id, EMBED_AHEAD,
                                    exclude_ids=(served, *skipped)):
        if not studio.sam.ready_in(session, image_id):
            studio.tasks.enqueue_embedding(image_id, ahead=True)


def _follow_up_open(studio: Studio, opened: OpenedImage) -> None:
    """Ask the worker for the SAM embedding of the image on screen when it is missing, first in
    line (ready before the first click, usually)."""
    if opened.sam_ready is False and studio.tasks is not None:
        studio.tasks.enqueue_embedding(opened.image_id, urgent=True)


def open_image(studio: Studio, actor: Actor, image_id: int) -> OpenedImage:
    """Everything the editor shows for ``image_id`` (one session); it may be leased to
    someone else (``held_until`` says until when)."""
    actor.require("view")
    with studio.session() as session:
        opened = _opened(studio, session, image_in(session, image_id), actor)
    _follow_up_open(studio, opened)
    return opened


def next_image(studio: Studio, actor: Actor, skipped: tuple[int, ...] = (),
               release: int | None = None) -> OpenedImage | None:
    """Lease the most uncertain unlabelled image not held by someone else and open it (one
    session); ``None`` when nothing is left. ``skipped``: ids this user passed over;
    ``release``: an image whose lease this user gives up first (Skip)."""
    actor.require("annotate")
    with studio.session() as session:
        if release is not None and actor.user_id is not None:
            release_lease(session, release, actor.user_id)
        image = lease_next_image(session, actor.user_id, studio.options.lease_seconds,
                                 exclude_ids=skipped)
        if image is None:
            return None
        session.commit()  # the lease stands even if opening fails; other writers go on
        opened = _opened(studio, session, image, actor)
        _embed_ahead(studio, session, actor, image.id, skipped)
    _follow_up_open(studio, opened)
    return opened


# ---------------------------------------------------------------- annotating
def save_labels(studio: Studio, actor: Actor, image_id: int, labels: np.ndarray | bytes,
                base: Base, state: RevisionState = RevisionState.draft,
                origin: Origin = Origin.human, model_version_id: int | None = None,
                comment: str | None = None, with_history: bool = False) -> SaveOutcome:
    """Save a label map (``H x W`` uint8 array or PNG bytes) as a new revision; never loses
    the work (a stale ``base`` keeps it as a draft and reports the conflict).
    ``with_history``: also read the image's revisions for a view to show (same session).

    Raises :class:`core.imageio.BadImageError` for a bad map (nothing stored).
    """
    if state not in (RevisionState.draft, RevisionState.submitted):
        raise ValueError(f"annotators save drafts or submissions, not {state.value}")
    actor.require("annotate")
    png = labels if isinstance(labels, bytes) else encode_label_png(labels)
    with studio.session() as session:
        image_in(session, image_id)
        start = current_number(session, image_id) if base == ANY_REVISION else base
        if origin == Origin.human and model_version_id is None and start is None:
            model_version_id = _unchanged_pre_annotation(studio, session, image_id, png)
            origin = Origin.model if model_version_id is not None else origin
        result = save_revision(session, image_id, png, actor.user_id, start, state=state,
                               origin=origin, model_version_id=model_version_id, comment=comment,
                               num_classes=studio.labels.num_classes)
        outcome = SaveOutcome(result.revision.id, result.revision.revision, result.conflict,
                              result.current_revision,
                              _history(session, image_id) if with_history else ())
    if not outcome.conflict and state == RevisionState.submitted and studio.tasks is not None:
        studio.tasks.label_saved(image_id)
    return outcome


def _unchanged_pre_annotation(studio: Studio, session: Session, image_id: int,
                              png: bytes) -> int | None:
    """The active version when ``png`` is exactly its cached pre-annotation of the image (a
    first save that changed nothing is the model's work, whoever clicked Save), else None.
    A bad ``png`` gives None here; the save itself then refuses it."""
    version = active_version(session)
    row = get_prediction(session, image_id, version.id) if version is not None else None
    if row is None:
        return None
    try:
        saved = decode_label_png(png, studio.labels.num_classes)
    except BadImageError:
        return None
    same = np.array_equal(saved, decode_label_png(row.label_png, 256))
    return version.id if same else None


def submit_labels(studio: Studio, actor: Actor, image_id: int,
                  comment: str | None = None) -> Decision:
    """Mark the newest (draft or rejected) label map as ready for review."""
    actor.require("annotate")
    with studio.session() as session:
        image_in(session, image_id)
        rev = submit(session, image_id, actor.user_id, comment)
        decision = Decision(image_id, rev.revision, rev.state.value)
    if studio.tasks is not None:
        studio.tasks.label_saved(image_id)
    return decision


def restore(studio: Studio, actor: Actor, image_id: int, number: int,
            base: int | None) -> SaveOutcome:
    """Append a copy of revision ``number`` as a new draft (same conflict rule as a save)."""
    actor.require("annotate")
    with studio.session() as session:
        image_in(session, image_id)
        result = restore_revision(session, image_id, number, actor.user_id, base)
        return SaveOutcome(result.revision.id, result.revision.revision, result.conflict,
                           result.current_revision, _history(session, image_id))


# ---------------------------------------------------------------- reviewing
def decide(studio: Studio, actor: Actor, image_id: int, approved: bool,
           comment: str | None = None) -> Decision:
    """Approve or reject the newest (submitted) revision; an approval may start retraining."""
    actor.require("review")
    with studio.session() as session:
        image_in(session, image_id)
        rev = (approve if approved else reject)(session, image_id, actor.user_id, comment)
        decision = Decision(image_id, rev.revision, rev.state.value)
    if approved and studio.tasks is not None:
        studio.tasks.label_saved(image_id)
    return decision


# ---------------------------------------------------------------- images and models
def add_image(studio: Studio, actor: Actor | None, data: bytes, name: str,
              ground_truth: np.ndarray | None = None, comment: str | None = None) -> AddedImage:
    """Store an uploaded image (duplicates by content give the existing one, ``created``
    False) and have the worker pre-annotate and embed a new one. ``actor`` None: the studio
    itself. ``ground_truth``: an exact ``H x W`` label map at the image size (demo faces),
    stored with a new image as an approved, imported revision in the same session."""
    if actor is not None:
        actor.require("upload")
    with studio.session() as session:
        result = store_image(session, studio.settings, data, name)
        image = result.image
        if ground_truth is not None and result.created:
            save_revision(session, image.id, encode_label_png(ground_truth), None, None,
                          state=RevisionState.approved, origin=Origin.imported, comment=comment,
                          num_classes=studio.labels.num_classes)
        added = AddedImage(image.id, image.source_name, image.width, image.height, result.created)
    if added.created and studio.tasks is not None:
        studio.tasks.enqueue_prediction(added.id)
        studio.tasks.enqueue_embedding(added.id)
    return added


def activate_version(studio: Studio, actor: Actor | None, version_id: int) -> None:
    """Make ``version_id`` the active model (promote or roll back); the worker then refreshes
    pre-annotations and queue priorities with it. ``actor`` None: the studio itself."""
    if actor is not None:
        actor.require("activate")
    with studio.session() as session:
        if get_version(session, version_id) is None:
            raise NotFound(f"no model version with id {version_id}")
        activate(session, version_id)
    _rescore(studio, version_id)


def add_active_version(studio: Studio, checkpoint: str, config: dict[str, Any],
                       metrics: dict[str, Any], num_labels: int, note: str) -> int:
    """Record a parser checkpoint (path relative to the data dir) as a model version and make
    it active, in one session (``serve --parser-checkpoint``); returns its id."""
    with studio.session() as session:
        version = add_version(session, checkpoint, config, metrics, num_labels=num_labels,
                              note=note)
        activate(session, version.id)
        version_id = version.id
    _rescore(studio, version_id)
    return version_id


def _rescore(studio: Studio, version_id: int) -> None:
    """After an activation: the worker refreshes pre-annotations and queue priorities."""
    if studio.tasks is not None:
        studio.tasks.enqueue_scoring(version_id)


def queue_training(studio: Studio, actor: Actor | None, source: str) -> int:
    """Create a training job and enqueue it; returns its id. ``actor`` None: the studio itself.

    Raises :class:`NoWorkerError` without a task queue and
    :class:`db.jobs.TrainingPendingError` when a run is already queued or running.
    """
    if actor is not None:
        actor.require("train")
    if studio.tasks is None:
        raise NoWorkerError("no background worker: start `python app.py serve` without "
                            "--no-worker, or run `python app.py worker` beside it")
    with studio.session() as session:
        job_id = create_training_job(session, {"source": source},
                                     actor.user_id if actor is not None else None).id
    try:
        studio.tasks.enqueue_training(job_id)
    except Exception as err:  # the queue is down: a job left queued would block training
        with studio.session() as session:
            fail(session, job_id, f"could not be queued: {err}")
        raise FacetError(f"training could not be queued: {err}") from err
    return job_id


# ---------------------------------------------------------------- deleting
def delete_image(studio: Studio, actor: Actor | None, image_id: int,
                 reason: str | None = None) -> DeletionRecord:
    """Delete an image for good (admins; ``actor`` None: the studio itself or the command
    line): its row with its queue priority and lease, every revision, every cached
    pre-annotation and SAM embedding, and its files on disk (the stored image, the embedding
    files); a :class:`db.models.Deletion` record keeps who, when, why and how many — never
    the file name or content hash (faces are personal data; see :mod:`db.deletion`).

    The rows go in one session; the files only after it committed (a crash in between
    leaves orphan files for ``python app.py sweep-files``, never a row without its file).
    Model checkpoints already trained on the image stay: they hold weights, not the image.
    Job params that list image ids (training snapshots) keep the bare id. Exports made after
    the deletion no longer contain the image; copies exported before must be handled by
    whoever holds them.

    Raises :class:`NotFound` when there is no such image (also when it was deleted before:
    the message says when and by whom), ``AccessDenied`` below the admin role.
    """
    if actor is not None:
        actor.require("delete")
    try:
        with studio.session() as session:
            pending = delete_image_rows(session, studio.settings, image_id,
                                        actor.user_id if actor is not None else None, reason)
    except ImageGone as err:
        raise NotFound(str(err)) from None
    with studio.session() as session:
        checkpoint_wal(session)
    if studio.sam is not None:
        studio.sam.forget(image_id)
    return remove_files(studio.settings, pending)

