"""Append-only annotation revisions with optimistic concurrency.

Each image has a main line of revisions numbered 1, 2, 3, ... A save names the revision it
started from (``base_revision``; ``None`` = "there was none yet"). If that is still the
newest, the save becomes the next number. Otherwise it is kept anyway, as a row with
``revision = None`` whose parent is the revision it started from, and the caller is told
there was a conflict (REST answers 409) — unless it repeats exactly the save that made the
newest revision (a double click, a retry), which returns that revision. Rows are never updated
after their transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, selectinload

from core.errors import FacetError
from core.imageio import decode_label_png, encode_label_png
from core.labels import CELEBAMASK
from db.models import Image, Origin, Revision, RevisionState

ALL_IDS = 256
"""``num_classes`` that accepts every uint8 id: for copies of label maps already validated."""


@dataclass(frozen=True)
class SaveResult:
    """What a save did. ``current_revision`` is the main-line number after the save."""

    revision: Revision
    conflict: bool
    current_revision: int | None


def require_image(session: Session, image_id: int) -> Image:
    """The image row; :class:`FacetError` when there is none."""
    image = session.get(Image, image_id)
    if image is None:
        raise FacetError(f"no image with id {image_id}")
    return image


def latest_numbers() -> Select:
    """``SELECT image_id, max(revision) AS number`` over main-line rows, per image.

    Use ``.subquery()`` on it to join images to their newest revision number.
    """
    return (select(Revision.image_id, func.max(Revision.revision).label("number"))
            .where(Revision.revision.is_not(None)).group_by(Revision.image_id))


def latest_revisions() -> Select:
    """``SELECT Revision`` rows that are the newest main-line revision of their image."""
    newest = latest_numbers().subquery()
    return select(Revision).join(newest, and_(Revision.image_id == newest.c.image_id,
                                              Revision.revision == newest.c.number))


def current_number(session: Session, image_id: int) -> int | None:
    """The newest main-line revision number of an image, ``None`` when it has none."""
    return session.scalar(select(func.max(Revision.revision))
                          .where(Revision.image_id == image_id, Revision.revision.is_not(None)))


def get_revision(session: Session, image_id: int, number: int) -> Revision | None:
    """Main-line revision ``number`` of an image."""
    return session.scalar(select(Revision).where(Revision.image_id == image_id,
                                                 Revision.revision == number))


def latest_revision(session: Session, image_id: int) -> Revision | None:
    """The newest main-line revision of an image (conflict drafts are not on the main line)."""
    return session.scalar(select(Revision)
                          .where(Revision.image_id == image_id, Revision.revision.is_not(None))
                          .order_by(Revision.revision.desc()).limit(1))


def history(session: Session, image_id: int) -> list[Revision]:
    """Every revision row of an image, oldest first, authors loaded.

    Conflict drafts appear in save order with ``revision = None``.
    """
    return list(session.scalars(select(Revision).where(Revision.image_id == image_id)
                                .options(selectinload(Revision.author))
                                .order_by(Revision.id)))


def _lock_image(session: Session, image_id: int) -> Image:
    """Load the image with a row lock where the backend has one (SQLite: a no-op)."""
    image = session.scalar(select(Image).where(Image.id == image_id).with_for_update())
    if image is None:
        raise FacetError(f"no image with id {image_id}")
    return image


def _is_8bit_greyscale_png(png: bytes) -> bool:
    """True for a PNG whose IHDR says bit depth 8, colour type 0 (Pillow's mode L)."""
    return png[12:16] == b"IHDR" and png[24:26] == b"\x08\x00"


def _is_repeat(won: Revision, row: Revision, base: Revision | None,
               state: RevisionState) -> bool:
    """True when saving ``row`` from ``base`` repeats what the current revision ``won`` already
    holds: same author, pixels, state and origin, and ``won`` is either that base (nothing
    changed since: a second click after the first one's answer) or was itself saved from it
    (a click queued behind the first, a retry)."""
    same = (won.author_id == row.author_id and won.label_png == row.label_png
            and won.state == state and won.origin == row.origin)
    base_id = base.id if base is not None else None
    return same and (won.id == base_id or won.parent_id == base_id)


def save_revision(session: Session, image_id: int, label_png: bytes, author_id: int | None,
                  base_revision: int | None, state: RevisionState | str = RevisionState.draft,
                  origin: Origin | str = Origin.human, model_version_id: int | None = None,
                  comment: str | None = None,
                  num_classes: int = CELEBAMASK.num_classes) -> SaveResult:
    """Store a label map for an image as a new revision (flushed; the caller commits).

    ``label_png`` must be a single-channel PNG of the image's ``label_width x label_height``
    with ids below ``num_classes`` (else :class:`~core.imageio.BadImageError`, nothing
    stored). Race-free: the new row is inserted first, which takes SQLite's write lock (and
    the image row is locked on servers), and only then is the newest number read, so two
    savers from the same base cannot both win.

    Idempotent: saving again what the current revision already holds (same author, pixels,
    state and origin, from that revision or from the one it was saved on — a double click, a
    client retrying after a lost answer) returns that revision, not a conflict or a copy, and
    stores nothing.
    """
    try:
        state, origin = RevisionState(state), Origin(origin)
    except ValueError as err:
        raise FacetError(str(err)) from None
    image = require_image(session, image_id)   # sizes never change: no lock needed yet
    label_map = decode_label_png(label_png, num_classes, (image.label_width, image.label_height))
    if not _is_8bit_greyscale_png(label_png):  # e.g. a palette PNG: store mode L only
        label_png = encode_label_png(label_map)
    _lock_image(session, image_id)  # decoded first: the lock is held for the writes only
    before = current_number(session, image_id)  # numbers only grow: a base above it never exists
    if base_revision is not None and (before is None or base_revision > before):
        raise FacetError(f"image {image_id} has no revision {base_revision} "
                         f"(latest is {before if before is not None else 'none'})")
    row = Revision(image_id=image_id, revision=None, author_id=author_id,
                   state=RevisionState.draft, origin=origin, label_png=label_png,
                   comment=comment, model_version_id=model_version_id)
    session.add(row)
    session.flush()  # the INSERT: from here on this transaction holds the write lock
    current = current_number(session, image_id)
    base = get_revision(session, image_id, base_revision) if base_revision else None
    won = get_revision(session, image_id, current) if current is not None else None
    if won is not None and _is_repeat(won, row, base, state):
        session.delete(row)  # this very save already happened (a double click, a retry)
        session.flush()
        return SaveResult(won, False, current)
    if base_revision != current:
        row.parent_id = base.id if base is not None else None
        session.flush()
        return SaveResult(row, True, current)
    if won is not None:
        row.parent_id = won.id
    row.revision = (current or 0) + 1
    row.state = state
    session.flush()
    return SaveResult(row, False, row.revision)


def restore_revision(session: Session, image_id: int, number: int, author_id: int | None,
                     base_revision: int | None) -> SaveResult:
    """Append a copy of main-line revision ``number`` as a new draft (undo to any revision).

    Same conflict rules as :func:`save_revision`; the copy keeps the origin of its pixels.
    """
    old = get_revision(session, image_id, number)
    if old is None:
        require_image(session, image_id)
        raise FacetError(f"image {image_id} has no revision {number}")
    return save_revision(session, image_id, old.label_png, author_id, base_revision,
                         state=RevisionState.draft, origin=old.origin,
                         model_version_id=old.model_version_id,
                         comment=f"restored revision {number}", num_classes=ALL_IDS)
