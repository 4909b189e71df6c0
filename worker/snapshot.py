"""Which labels a training run sees, and which images are held out for validation.

A *label* is an image's newest main-line revision when its state is ``submitted`` or
``approved`` (imported CelebAMask-HQ masks arrive approved). An image whose newest revision is
a draft or was rejected, or that has none, is *unlabelled* — exactly the images the annotation
queue (:mod:`db.annotation_queue`) still serves. Images with ``split == "test"`` are never used
for training or validation.

The validation split stays fixed across runs: it is the labelled images whose ``split`` is
``"val"`` (one in five by hash, assigned when the image is added, :func:`db.images.default_split`).
When fewer than :data:`MIN_VAL` of those are labelled, the labelled training images with the
smallest sha256 are added until there are :data:`MIN_VAL` — deterministic, so the same labels
give the same split.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.errors import FacetError
from db.models import Image, Revision, RevisionState
from db.revisions import latest_revisions

LABELLED_STATES: tuple[RevisionState, ...] = (RevisionState.submitted, RevisionState.approved)
APPROVED_ONLY: tuple[RevisionState, ...] = (RevisionState.approved,)
"""What counts as a label when only reviewed labels train (``FACET_TRAIN_ONLY_APPROVED``)."""
MIN_VAL = 2
"""Least number of validation images a run needs."""


@dataclass(frozen=True)
class LabelledImage:
    """One labelled image of a snapshot: ids only, pixels are read when training starts."""

    image_id: int
    revision_id: int
    sha256: str


@dataclass(frozen=True)
class Snapshot:
    """The data of one training run, fixed when it starts.

    ``max_revision_id``: the largest revision row id among the labels (0 when none); labels
    saved later have larger ids, which is how new labels are counted.
    """

    train: tuple[LabelledImage, ...]
    val: tuple[LabelledImage, ...]
    unlabeled: tuple[int, ...]
    max_revision_id: int
    num_approved: int = 0
    """Labels among train and val that a reviewer approved (the rest are submitted)."""

    @property
    def num_labels(self) -> int:
        return len(self.train) + len(self.val)

    def describe(self) -> dict[str, object]:
        """JSON-ready summary kept in the job's params."""
        return {"train_ids": [x.image_id for x in self.train],
                "val_ids": [x.image_id for x in self.val],
                "num_unlabeled": len(self.unlabeled), "max_revision_id": self.max_revision_id,
                "num_approved": self.num_approved}


def labelled_rows(session: Session, states: tuple[RevisionState, ...] = LABELLED_STATES
                  ) -> list[tuple[Image, Revision]]:
    """``(image, revision)`` for each non-test image whose newest revision is a label (its
    state one of ``states``), by id."""
    latest = latest_revisions().subquery()
    rev = aliased(Revision, latest)
    stmt = (select(Image, rev).join(rev, rev.image_id == Image.id)
            .where(rev.state.in_([s.value for s in states]), Image.split != "test")
            .order_by(Image.id))
    return [(image, revision) for image, revision in session.execute(stmt).all()]


def needs_work_ids(session: Session, include_test: bool = True) -> list[int]:
    """Ids of images without a label (no revision, or newest is draft/rejected), by id.

    These are the images the annotation queue serves; ``include_test=False`` drops the test split.
    """
    latest = latest_revisions().subquery()
    labelled = select(latest.c.image_id).where(
        latest.c.state.in_([s.value for s in LABELLED_STATES]))
    stmt = select(Image.id).where(Image.id.not_in(labelled)).order_by(Image.id)
    if not include_test:
        stmt = stmt.where(Image.split != "test")
    return list(session.scalars(stmt))


def unlabeled_ids(session: Session) -> list[int]:
    """Images for self-distillation: :func:`needs_work_ids` without the test split."""
    return needs_work_ids(session, include_test=False)


def split_labels(rows: list[tuple[Image, Revision]],
                 min_val: int = MIN_VAL) -> tuple[list[LabelledImage], list[LabelledImage]]:
    """``(train, val)`` as described in the module docstring; both sorted by image id.

    Raises :class:`FacetError` when fewer than ``min_val + 1`` labels exist (a run needs at
    least one training image beside the validation ones).
    """
    if len(rows) < min_val + 1:
        raise FacetError(f"training needs at least {min_val + 1} submitted or approved labels "
                         f"({min_val} are held out for validation); there are {len(rows)}")
    items = [(image.split, LabelledImage(image.id, rev.id, image.sha256)) for image, rev in rows]
    val = [x for split, x in items if split == "val"]
    train = [x for split, x in items if split != "val"]
    if len(val) < min_val:
        train.sort(key=lambda x: x.sha256)
        need = min_val - len(val)
        val, train = val + train[:need], train[need:]
    if not train:  # every label sits in the val split: keep min_val there, train on the rest
        val.sort(key=lambda x: x.sha256)
        val, train = val[:min_val], val[min_val:]
    return sorted(train, key=lambda x: x.image_id), sorted(val, key=lambda x: x.image_id)


def take_snapshot(session: Session, max_unlabeled: int | None = None,
                  min_val: int = MIN_VAL,
                  states: tuple[RevisionState, ...] = LABELLED_STATES) -> Snapshot:
    """The labels, validation split and unlabelled images as they are now.

    ``max_unlabeled`` caps the unlabelled images kept for distillation (the ones with the
    smallest ids — deterministic); ``None`` keeps all. ``states``: what counts as a label
    (:data:`APPROVED_ONLY`: reviewed labels only; submitted ones then wait for review and are
    neither labels nor unlabelled images).
    """
    rows = labelled_rows(session, states)
    train, val = split_labels(rows, min_val)
    unlabeled = unlabeled_ids(session)
    if max_unlabeled is not None:
        unlabeled = unlabeled[:max_unlabeled]
    top = max((rev.id for _, rev in rows), default=0)
    approved = sum(rev.state == RevisionState.approved for _, rev in rows)
    return Snapshot(tuple(train), tuple(val), tuple(unlabeled), top, approved)


def count_labels_since(session: Session, revision_id: int,
                       states: tuple[RevisionState, ...] = LABELLED_STATES) -> int:
    """Images with a label saved after revision row ``revision_id`` (non-test images).

    A label counts when the image's newest main-line revision is in ``states`` (submitted or
    approved by default) and newer than ``revision_id``, unless it only restates a label the
    run already had (a reviewer approving a submitted label appends a copy with the same
    pixels: not new information — unless only approved labels train, see :data:`APPROVED_ONLY`).
    """
    latest = aliased(Revision, latest_revisions().subquery())
    parent = aliased(Revision)
    same_as_before = (select(parent.id).where(
        parent.id == latest.parent_id, parent.id <= revision_id,
        parent.state.in_([s.value for s in states]),
        parent.label_png == latest.label_png).exists())
    stmt = (select(func.count()).select_from(latest).join(Image, Image.id == latest.image_id)
            .where(latest.state.in_([s.value for s in states]),
                   latest.id > revision_id, Image.split != "test", ~same_as_before))
    return int(session.scalar(stmt) or 0)


def max_label_revision_id(session: Session,
                          states: tuple[RevisionState, ...] = LABELLED_STATES) -> int:
    """The largest revision row id among current labels (non-test); 0 when there is none."""
    latest = aliased(Revision, latest_revisions().subquery())
    stmt = (select(func.max(latest.id)).join(Image, Image.id == latest.image_id)
            .where(latest.state.in_([s.value for s in states]), Image.split != "test"))
    return int(session.scalar(stmt) or 0)
