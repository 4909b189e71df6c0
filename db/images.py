"""Images in the database: adding files (content-addressed), looking them up, reading pixels.

An image file lives under ``settings.images_dir`` as ``{sha256}{ext}`` with its original bytes
untouched; the :class:`~db.models.Image` row holds the path relative to ``settings.data_dir``.
The sha256 of the bytes is the identity: adding the same bytes twice returns the first row.

An image's *status* comes from its latest main-line revision (``revision`` not null, highest
number): ``unlabeled`` when it has none, else that revision's state.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from core.errors import FacetError
from core.imageio import BadImageError, decode_image, image_size, write_atomic
from db.models import Image, Revision
from db.revisions import latest_numbers
from db.settings import Settings

INSERT_ATTEMPTS = 5
"""Tries to find a free ``k`` when other writers take each one first."""
_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}

STATUSES: tuple[str, ...] = ("unlabeled", "draft", "submitted", "approved", "rejected")
"""Every value :func:`list_images` reports; ``unlabeled`` = no main-line revision."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

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
    result = session.execute(_INSERTS[dialect](Image).values(**values).on_conflict_do_nothing())
    if result.rowcount == 0:
        return None
    return session.scalar(select(Image).where(Image.sha256 == values["sha256"]))


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


def list_images(session: Session, status: str | None = None) -> list[ImageStatus]:
    """Images ordered by ``k`` with their status; only those with ``status`` when given.

    ``status`` is one of :data:`STATUSES`; anything else raises :class:`FacetError`.
    """
    if status is not None and status not in STATUSES:
        raise FacetError(f"unknown status {status!r} (expected one of {', '.join(STATUSES)})")
    out = []
    for image, rev in images_with_latest(session):
        item = ImageStatus(image, "unlabeled" if rev is None else rev.state.value,
                           None if rev is None else rev.revision)
        if status is None or item.status == status:
            out.append(item)
    return out


def image_file(settings: Settings, image: Image) -> Path:
    """Absolute path of the image's stored file."""
    return settings.data_dir / image.file_path


def read_image(settings: Settings, image: Image) -> np.ndarray:
    """The image's pixels: ``H x W x 3`` uint8 RGB."""
    return decode_image(image_file(settings, image))
