"""Annotation work shared by the API and the UI: where an image's label map starts, saving it,
its history. Label maps are ``H x W`` uint8 class ids at the image's label size."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from db.models import Origin, RevisionState
from db.revisions import history, latest_revision, require_image, save_revision
from db.versions import get_version
from core.imageio import decode_label_png, encode_label_png
from webapp.auth import Actor
from webapp.predictions import VersionInfo
from webapp.studio import Studio


@dataclass(frozen=True)
class RevisionInfo:
    """One row of an image's history. ``number`` is None for a draft kept after a conflict."""

    id: int
    number: int | None
    state: str
    origin: str
    author: str
    created_at: datetime
    comment: str | None
    model_version_id: int | None


@dataclass(frozen=True)
class StartPoint:
    """What an annotator starts from: the newest revision, else the active model's prediction,
    else an empty map (``source`` says which; ``base_revision`` is what a save must carry)."""

    image_id: int
    labels: np.ndarray
    base_revision: int | None
    source: str                 # "revision" | "model" | "empty"
    revision: RevisionInfo | None
    version: VersionInfo | None


def _info(rev) -> RevisionInfo:
    return RevisionInfo(rev.id, rev.revision, rev.state.value, rev.origin.value,
                        rev.author.name if rev.author is not None else "local",
                        rev.created_at, rev.comment, rev.model_version_id)


def start_point(studio: Studio, image_id: int) -> StartPoint:
    """Raises :class:`core.errors.FacetError` for an unknown image."""
    with studio.session() as session:
        require_image(session, image_id)
        rev = latest_revision(session, image_id)
        if rev is not None:
            labels = decode_label_png(rev.label_png, studio.labels.num_classes)
            info = _info(rev)
            made_by = get_version(session, rev.model_version_id) if rev.model_version_id else None
            version = VersionInfo.of(made_by) if made_by is not None else None
            return StartPoint(image_id, labels, info.number, "revision", info, version)
    pred = studio.parsers.prediction(image_id)
    return StartPoint(image_id, pred.labels, None, "model" if pred.version else "empty", None,
                      pred.version)


@dataclass(frozen=True)
class SaveOutcome:
    """``number``: the new main-line revision, or None when the save lost a conflict (then the
    work was kept as a draft row ``row_id`` and ``current`` is the revision that won)."""

    row_id: int
    number: int | None
    conflict: bool
    current: int | None


def save_labels(studio: Studio, actor: Actor, image_id: int, labels: np.ndarray | bytes,
                base_revision: int | None, state: RevisionState = RevisionState.draft,
                origin: Origin = Origin.human, model_version_id: int | None = None,
                comment: str | None = None) -> SaveOutcome:
    """Save a label map (array or PNG bytes) as a new revision; never loses the work.

    Raises :class:`core.imageio.BadImageError` for a bad map (nothing stored) and
    :class:`webapp.auth.AccessDenied` when ``actor`` may not do this.
    """
    if state not in (RevisionState.draft, RevisionState.submitted):
        raise ValueError(f"annotators save drafts or submissions, not {state.value}")
    actor.require("annotate")
    png = labels if isinstance(labels, bytes) else encode_label_png(labels)
    with studio.session() as session:
        result = save_revision(session, image_id, png, actor.user_id, base_revision, state=state,
                               origin=origin, model_version_id=model_version_id, comment=comment,
                               num_classes=studio.labels.num_classes)
        outcome = SaveOutcome(result.revision.id, result.revision.revision, result.conflict,
                              result.current_revision)
    if not outcome.conflict and state == RevisionState.submitted and studio.tasks is not None:
        studio.tasks.label_saved(image_id)
    return outcome


def history_rows(studio: Studio, image_id: int) -> list[RevisionInfo]:
    """Every revision of an image, oldest first (conflict drafts included, ``number=None``)."""
    with studio.session() as session:
        return [_info(rev) for rev in history(session, image_id)]
