"""Images in the database: adding files (content-addressed), looking them up, reading pixels.

An image file lives under ``settings.images_dir`` as ``{sha256}{ext}`` with its original bytes
untouched; the :class:`~db.models.Image` row holds the path relative to ``settings.data_dir``.
The sha256 of the bytes is the identity: adding the same bytes twice returns the first row.

An image's *status* comes from its latest main-line revision (``revision`` not null, highest
number): ``unlabeled`` when it has none, else that revision's state.

Listing (:func:`page_images`, :func:`list_images`) is SQL all the way: one query for a page,
one for its count; each image's latest revision is found through the ``(image_id, revision)``
unique index and no label map is loaded.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from core.errors import FacetError
from core.imageio import BadImageError, decode_image, image_size, write_atomic
from db.models import MAX_ID, Image, Revision, RevisionState, User
from db.revisions import latest_numbers
from db.settings import Settings

INSERT_ATTEMPTS = 5
"""Tries to find a free ``k`` when other writers take each one first."""
_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}

STATUSES: tuple[str, ...] = ("unlabeled", "draft", "submitted", "approved", "rejected")
"""Every value :func:`list_images` reports; ``unlabeled`` = no main-line revision."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

IMAGE_SORTS: tuple[str, ...] = ("id", "-id", "priority", "-priority", "updated", "-updated")
"""Orders :func:`page_images` knows; ``-`` = descending. Ties break on ``id`` in the same
direction; images without a priority come last either way; ``updated`` is the time of the
newest main-line revision, or the upload time of an unlabelled image."""
MAX_PAGE = 1000
"""The largest page :func:`page_images` returns."""
LABELLING_STATES = (RevisionState.draft, RevisionState.submitted)
"""Revisions that count for ``labelled_by``: saves and submits (not review decisions)."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"BM", ".bmp"),
)


@dataclass(frozen=True)
class AddResult:
    """What :func:`add_image` did: the row, and whether it is new (``False`` = duplicate)."""

    image: Image
    created: bool


@dataclass(frozen=True)
class ImageStatus:
    """An image with the state of its latest main-line revision (``revision`` None if unlabeled)."""

    image: Image
    status: str
    revision: int | None


def sha256_hex(data: bytes) -> str:
    """Content hash used for de-duplication: 64 lowercase hex digits."""
    return hashlib.sha256(data).hexdigest()


def default_split(sha256: str) -> str:
    """The split of an image that brings none: ``val`` for one hash in five, else ``train``."""
    return "val" if int(sha256[:8], 16) % 5 == 0 else "train"


def file_extension(data: bytes) -> str:
    """``.jpg``, ``.png``, ``.webp`` or ``.bmp`` from the file's magic bytes.

    Raises :class:`BadImageError` for any other format (GIF, TIFF, ...).
    """
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    raise BadImageError("unsupported image format (expected JPEG, PNG, WebP or BMP)")


def next_k(session: Session) -> int:
    """A fresh export id: one past the largest ``k`` in use (0 for an empty database)."""
    top = session.scalar(select(func.max(Image.k)))
    return 0 if top is None else top + 1


def add_image(session: Session, settings: Settings, data: bytes, source_name: str,
              source_k: int | None = None, label_size: tuple[int, int] | None = None,
              *, split: str | None = None) -> AddResult:
    """Store an image file and add its row (flushed, not committed).

    ``data``: the file's bytes, stored untouched. ``source_k``: the id in the CelebAMask-HQ tree
    it came from; it becomes ``k`` when no other image has that ``k``, else ``k`` is
    :func:`next_k`. ``label_size``: ``(width, height)`` of its label maps in pixels (default: the
    image size). ``split``: train/val/test (default: :func:`default_split`).

    Same bytes as an existing image → that image, ``created=False``, nothing written — also
    when another writer (an import beside an upload) adds the same bytes or takes the same
    ``k`` at the same moment: the insert never fails on a collision, it looks again.
    Raises :class:`BadImageError` (nothing written) when ``data`` is not a usable image.
    """
    if split is not None and split not in SPLITS:
        raise FacetError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    digest = sha256_hex(data)
    existing = session.scalar(select(Image).where(Image.sha256 == digest))
    if existing is not None:
        return AddResult(existing, False)
    width, height = image_size(data)  # full decode: raises BadImageError on any defect
    ext = file_extension(data)
    path = settings.images_dir / f"{digest}{ext}"
    write_atomic(path, data)  # the file exists before its row is ever committed
    label_width, label_height = label_size or (width, height)
    row = dict(sha256=digest, file_path=path.relative_to(settings.data_dir).as_posix(),
               width=width, height=height, label_width=label_width, label_height=label_height,
               source_name=source_name, source_k=source_k, split=split or default_split(digest))
    for _ in range(INSERT_ATTEMPTS):
        k = source_k if source_k is not None and source_k >= 0 and session.scalar(
            select(Image.id).where(Image.k == source_k)) is None else next_k(session)
        image = _insert_unless_taken(session, {**row, "k": k})
        if image is not None:
            return AddResult(image, True)
        existing = session.scalar(select(Image).where(Image.sha256 == digest))
        if existing is not None:  # another writer added the same bytes meanwhile
            return AddResult(existing, False)
    raise FacetError(f"could not find a free id k for {source_name} after {INSERT_ATTEMPTS} "
                     "attempts (many imports at once?); try again")


def _insert_unless_taken(session: Session, values: dict) -> Image | None:
    """Insert an image row; ``None`` (nothing written, no error) when its ``sha256`` or ``k``
    is taken by a row another writer committed since this one looked.

    ``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so a collision never
    aborts the caller's transaction (an import commits many images in one).
    """
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:  # other databases: a plain insert (a collision raises)
        image = Image(**values)
        session.add(image)
        session.flush()
        return image
    # RETURNING says whether a row went in (a bulk ORM insert's rowcount is -1 on psycopg)
    new_id = session.execute(_INSERTS[dialect](Image).values(**values).on_conflict_do_nothing()
                             .returning(Image.id)).scalar_one_or_none()
    return None if new_id is None else session.get(Image, new_id)


def get_image(session: Session, image_id: int) -> Image | None:
    """The image with primary key ``image_id``, or ``None``."""
    return session.get(Image, image_id)


def images_with_latest(session: Session) -> list[tuple[Image, Revision | None]]:
    """Every image (by ``k``) with its latest main-line revision, ``None`` when it has none."""
    top = latest_numbers().subquery()
    latest = aliased(Revision)
    stmt = (select(Image, latest)
            .outerjoin(top, top.c.image_id == Image.id)
            .outerjoin(latest, (latest.image_id == Image.id) & (latest.revision == top.c.number))
            .order_by(Image.k))
    return [(image, rev) for image, rev in session.execute(stmt).all()]


@dataclass(frozen=True)
class ImageFilter:
    """What :func:`page_images` selects. ``status``: one of :data:`STATUSES`; ``name``: a
    case-insensitive substring of the file name; ``labelled_by``: a user name (images with a
    main-line save or submit by that user); ``updated_since``: images whose ``updated`` time
    (see :data:`IMAGE_SORTS`) is at or after it (naive = UTC)."""

    status: str | None = None
    name: str | None = None
    labelled_by: str | None = None
    updated_since: datetime | None = None


@dataclass(frozen=True)
class ImagePage:
    """One page of images: ``total`` matches the filter (all pages), ``next`` is the cursor
    of the page after this one (``None`` on the last page)."""

    items: list[ImageStatus]
    total: int
    next: str | None


def parse_time(value: str) -> datetime:
    """An ISO 8601 time (``2024-05-01``, ``2024-05-01T12:00:00Z``, ``…+02:00``) as naive UTC;
    a time without a zone is UTC. :class:`FacetError` otherwise."""
    try:
        moment = datetime.fromisoformat(value.strip())
        if moment.tzinfo is not None:  # may leave the datetime range (0001-01-01T00:00+01:00)
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise FacetError(f"not an ISO 8601 time: {value!r} (e.g. 2024-05-01T12:00:00Z)") from None
    return moment


class _Latest:
    """Each image's newest main-line revision, outer-joined: ``row`` is the aliased revision
    (``None`` columns when unlabelled), ``on`` the join condition, ``updated`` its time (the
    upload time when there is none)."""

    def __init__(self) -> None:
        self.row = aliased(Revision, name="latest")
        newest = (select(func.max(Revision.revision)).where(Revision.image_id == Image.id)
                  .correlate(Image).scalar_subquery())
        self.on = and_(self.row.image_id == Image.id, self.row.revision == newest)
        self.updated = func.coalesce(self.row.created_at, Image.created_at)


def _user_id(session: Session, filt: ImageFilter) -> int | None:
    """The id of ``filt.labelled_by`` (``None`` when not given); :class:`FacetError` when no
    user has that name."""
    if filt.labelled_by is None:
        return None
    user_id = session.scalar(select(User.id).where(User.name == filt.labelled_by))
    if user_id is None:
        raise FacetError(f"no user named {filt.labelled_by!r}")
    return user_id


def _conditions(latest: _Latest, filt: ImageFilter, user_id: int | None
                ) -> tuple[list[ColumnElement[bool]], bool]:
    """WHERE clauses for ``filt`` (``user_id``: :func:`_user_id`) and whether they need the
    latest revision joined."""
    where: list[ColumnElement[bool]] = []
    needs_latest = False
    if filt.status is not None:
        if filt.status not in STATUSES:
            raise FacetError(f"unknown status {filt.status!r} (one of {', '.join(STATUSES)})")
        needs_latest = True
        where.append(latest.row.id.is_(None) if filt.status == "unlabeled"
                     else latest.row.state == RevisionState(filt.status))
    if filt.name:
        where.append(Image.source_name.icontains(filt.name, autoescape=True))
    if user_id is not None:
        where.append(exists().where(Revision.image_id == Image.id, Revision.author_id == user_id,
                                    Revision.revision.is_not(None),
                                    Revision.state.in_(LABELLING_STATES)))
    if filt.updated_since is not None:
        needs_latest = True
        where.append(latest.updated >= filt.updated_since)
    return where, needs_latest


def _sort_key(latest: _Latest, sort: str):
    """The column ``sort`` orders by before ``id`` (``None`` for ``id``) and whether it is
    descending."""
    if sort not in IMAGE_SORTS:
        raise FacetError(f"unknown sort {sort!r} (one of {', '.join(IMAGE_SORTS)})")
    name = sort.lstrip("-")
    key = {"id": None, "priority": Image.priority, "updated": latest.updated}[name]
    return key, sort.startswith("-")


def _encode_cursor(sort: str, key, image_id: int) -> str:
    if isinstance(key, datetime):
        key = key.isoformat()
    raw = json.dumps([sort, key, image_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str):
    """``(key, id)`` from a cursor that :func:`page_images` gave for the same ``sort``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, key, image_id = json.loads(raw)
        if type(image_id) is not int or not 0 <= image_id <= MAX_ID or made_for != sort:  # not bool
            raise ValueError
        if sort.lstrip("-") == "updated":
            if not isinstance(key, str):
                raise ValueError
            key = parse_time(key)
        elif key is not None:
            if type(key) not in (int, float):  # not bool
                raise ValueError
            key = float(key)  # the priority column's type; a huge int is an OverflowError
    except (ValueError, TypeError, OverflowError, FacetError, binascii.Error, UnicodeDecodeError):
        raise FacetError(f"bad cursor {cursor!r}: pass back the 'next' of the previous page, "
                         "with the same sort") from None
    return key, image_id


def _after(key_col, descending: bool, cursor_key, cursor_id: int) -> ColumnElement[bool]:
    """Rows after ``(cursor_key, cursor_id)`` in the order of :func:`_order`."""
    beyond = (lambda col, v: col < v) if descending else (lambda col, v: col > v)
    if key_col is None:
        return beyond(Image.id, cursor_id)
    if cursor_key is None:  # inside the trailing block of NULL keys
        return and_(key_col.is_(None), beyond(Image.id, cursor_id))
    return or_(beyond(key_col, cursor_key),
               and_(key_col == cursor_key, beyond(Image.id, cursor_id)),
               key_col.is_(None))


def _order(key_col, descending: bool) -> list:
    direction = (lambda c: c.desc()) if descending else (lambda c: c.asc())
    if key_col is None:
        return [direction(Image.id)]
    return [key_col.is_(None), direction(key_col), direction(Image.id)]


def page_images(session: Session, filt: ImageFilter = ImageFilter(), sort: str = "id",
                limit: int = 100, cursor: str | None = None) -> ImagePage:
    """A page of at most ``limit`` (1..:data:`MAX_PAGE`) images matching ``filt`` in ``sort``
    order (:data:`IMAGE_SORTS`), starting after ``cursor`` (the ``next`` of the page before).

    Two queries: the page (``limit + 1`` rows, to know whether another follows) and the count
    (and before them the user's id for ``labelled_by``). The page's ids are chosen first, with
    the latest revision joined only when the filter or the sort needs it.
    :class:`FacetError` for an unknown status, sort or user, a bad limit, or a cursor made for
    another sort.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise FacetError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    latest = _Latest()
    key_col, descending = _sort_key(latest, sort)
    user_id = _user_id(session, filt)
    where, needs_latest = _conditions(latest, filt, user_id)
    if cursor is not None:
        where.append(_after(key_col, descending, *_decode_cursor(cursor, sort)))
    # The page's ids first; then the latest revision of just those rows.
    ids = select(Image.id.label("id"), (key_col if key_col is not None else Image.id).label("key"))
    if needs_latest or sort.lstrip("-") == "updated":
        ids = ids.outerjoin(latest.row, latest.on)
    ids = (ids.where(*where).order_by(*_order(key_col, descending))
           .limit(limit + 1).subquery("page"))
    shown = _Latest()
    stmt = (select(Image, shown.row.state, shown.row.revision, ids.c.key)
            .join(ids, ids.c.id == Image.id).outerjoin(shown.row, shown.on)
            .order_by(*_order(None if key_col is None else ids.c.key, descending)))
    rows = session.execute(stmt).all()
    items = [_status(image, state, number) for image, state, number, _key in rows[:limit]]
    following = None
    if len(rows) > limit:
        image, _state, _number, key = rows[limit - 1]
        following = _encode_cursor(sort, key if key_col is not None else None, image.id)
    return ImagePage(items, _count(session, filt, user_id), following)


def count_images(session: Session, filt: ImageFilter = ImageFilter()) -> int:
    """How many images match ``filt`` (one query; the latest revision is joined only when the
    filter needs it)."""
    return _count(session, filt, _user_id(session, filt))


def _count(session: Session, filt: ImageFilter, user_id: int | None) -> int:
    latest = _Latest()
    where, needs_latest = _conditions(latest, filt, user_id)
    stmt = select(func.count()).select_from(Image)
    if needs_latest:
        stmt = stmt.outerjoin(latest.row, latest.on)
    return session.scalar(stmt.where(*where)) or 0


def _status(image: Image, state: RevisionState | None, number: int | None) -> ImageStatus:
    return ImageStatus(image, "unlabeled" if state is None else state.value, number)


def list_images(session: Session, status: str | None = None) -> list[ImageStatus]:
    """Every image ordered by ``k`` with its status; only those with ``status`` when given.

    ``status`` is one of :data:`STATUSES`; anything else raises :class:`FacetError`. One query
    (no label maps loaded); page with :func:`page_images` instead at dataset size.
    """
    latest = _Latest()
    where, _ = _conditions(latest, ImageFilter(status=status), None)
    stmt = (select(Image, latest.row.state, latest.row.revision)
            .outerjoin(latest.row, latest.on).where(*where).order_by(Image.k))
    return [_status(image, state, number) for image, state, number in session.execute(stmt)]


def image_file(settings: Settings, image: Image) -> Path:
    """Absolute path of the image's stored file."""
    return settings.data_dir / image.file_path


def read_image(settings: Settings, image: Image) -> np.ndarray:
    """The image's pixels: ``H x W x 3`` uint8 RGB."""
    return decode_image(image_file(settings, image))
