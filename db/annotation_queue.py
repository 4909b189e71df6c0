"""The annotation queue: which image an annotator gets next, with a time-limited lease.

An image needs work when it has no main-line revision or its newest one is a draft or was
rejected. Highest ``priority`` (the active model's uncertainty) first, unscored images last,
then the oldest id. A lease keeps two annotators off the same image until it expires.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from db.models import Image, Revision, RevisionState, utcnow
from db.revisions import latest_numbers

NEEDS_WORK = (RevisionState.draft, RevisionState.rejected)


def _latest_state():
    """Subquery ``(image_id, state)`` of each image's newest main-line revision."""
    newest = latest_numbers().subquery()
    return (select(Revision.image_id, Revision.state)
            .join(newest, and_(Revision.image_id == newest.c.image_id,
                               Revision.revision == newest.c.number))
            .subquery())


def _needs_work(latest):
    return or_(latest.c.state.is_(None), latest.c.state.in_(NEEDS_WORK))


def _free_for(user_id: int, now: datetime):
    """Images ``user_id`` may lease at ``now``: unleased, expired, or already theirs."""
    return or_(Image.lease_user_id.is_(None), Image.lease_until.is_(None),
               Image.lease_until <= now, Image.lease_user_id == user_id)


def next_image(session: Session, user_id: int, lease_seconds: float = 900,
               exclude_ids: Iterable[int] = (), now: datetime | None = None) -> Image | None:
    """Lease the next image needing work to ``user_id`` for ``lease_seconds``; ``None`` if none.

    A user holds at most one lease: taking a new one releases their others. The lease is
    taken with a conditional UPDATE, so two annotators never get the same image.
    ``now`` (naive UTC) is for tests.
    """
    now = now or utcnow()
    latest = _latest_state()
    tried = [int(i) for i in exclude_ids]
    query = (select(Image.id).outerjoin(latest, latest.c.image_id == Image.id)
             .where(_needs_work(latest), _free_for(user_id, now))
             .order_by(Image.priority.desc().nulls_last(), Image.id).limit(20))
    while candidates := session.scalars(query.where(Image.id.not_in(tried))).all():
        for image_id in candidates:
            taken = session.execute(
                update(Image).where(Image.id == image_id, _free_for(user_id, now))
                .values(lease_user_id=user_id,
                        lease_until=now + timedelta(seconds=lease_seconds)))
            if taken.rowcount == 1:
                session.execute(update(Image).where(Image.lease_user_id == user_id,
                                                    Image.id != image_id)
                                .values(lease_user_id=None, lease_until=None))
                return session.get(Image, image_id, populate_existing=True)
        tried += candidates  # all taken by others in the meantime: look further down
    return None


def upcoming_images(session: Session, user_id: int, count: int, exclude_ids: Iterable[int] = (),
                    now: datetime | None = None) -> list[int]:
    """Ids of the ``count`` images :func:`next_image` would hand ``user_id`` next, in order,
    without leasing them (for work ahead of the annotator, e.g. SAM embeddings)."""
    now = now or utcnow()
    latest = _latest_state()
    return list(session.scalars(
        select(Image.id).outerjoin(latest, latest.c.image_id == Image.id)
        .where(_needs_work(latest), _free_for(user_id, now),
               Image.id.not_in([int(i) for i in exclude_ids]))
        .order_by(Image.priority.desc().nulls_last(), Image.id).limit(count)))


def release(session: Session, image_id: int, user_id: int) -> bool:
    """Drop ``user_id``'s lease on an image; False when they did not hold it."""
    done = session.execute(update(Image).where(Image.id == image_id,
                                               Image.lease_user_id == user_id)
                           .values(lease_user_id=None, lease_until=None))
    return done.rowcount == 1


def queue_counts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """``{"needs_work", "leased", "available", "submitted", "approved"}`` image counts."""
    now = now or utcnow()
    latest = _latest_state()
    base = select(func.count(Image.id)).outerjoin(latest, latest.c.image_id == Image.id)
    needs = int(session.scalar(base.where(_needs_work(latest))) or 0)
    leased = int(session.scalar(base.where(_needs_work(latest), Image.lease_user_id.is_not(None),
                                           Image.lease_until > now)) or 0)
    submitted = int(session.scalar(base.where(latest.c.state == RevisionState.submitted)) or 0)
    approved = int(session.scalar(base.where(latest.c.state == RevisionState.approved)) or 0)
    return {"needs_work": needs, "leased": leased, "available": needs - leased,
            "submitted": submitted, "approved": approved}
