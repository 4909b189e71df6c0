"""Deleting an image for good: its rows in one transaction, then its files, then a record.

What goes (everything that refers to the image):

- rows: the ``images`` row (its queue priority and lease live on it), every ``revisions`` row
  (main line and conflict drafts), every ``predictions`` row (cached pre-annotations are PNG
  blobs in the row, there are no prediction files) and every ``sam_embeddings`` row;
- files under the data dir: the stored image file (``images/{sha256}{ext}``) and every SAM
  embedding file of the image (``cache/sam/<model>/{image id}.npz``, with or without a row).

What stays: a :class:`db.models.Deletion` row — the image id, who (``None`` for the command
line and the open mode), when, the optional reason and how many rows and files went — and
nothing else about the image: no file name, no content hash, no pixels. Faces are personal
data, and a deletion request must be honoured completely. Model checkpoints already trained
on the image stay: they hold weights, not the image. Job params that snapshot a training run
(``train_ids``/``val_ids``) keep the bare ids; a run in progress that reaches a deleted image
fails with "vanished during the run" and the next run no longer sees it.

On SQLite the deletion runs with ``PRAGMA secure_delete`` so the freed database pages are
zeroed, and :func:`checkpoint_wal` then moves the write-ahead log into the database and
truncates it (older copies of the pages live there). When other connections keep it busy
the log is truncated at a later checkpoint instead.

Order: :func:`delete_image` removes the rows and adds the record in the caller's transaction;
:func:`remove_files` removes the files only **after** that transaction committed. A crash in
between leaves orphan files (never a row pointing at a missing file); :func:`sweep_orphans`
finds and removes them later (``python app.py sweep-files``), as it does files a worker wrote
for an image while it was being deleted.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from core.errors import FacetError
from db.models import Deletion, Image, Prediction, Revision, SamEmbedding, User, utcnow
from db.settings import Settings

MAX_REASON = 1000
"""Longest reason kept, in characters."""
KEPT_NOTE = ("Model checkpoints already trained on it are kept (they hold weights, not the "
             "image).")
"""What a deletion leaves, as the UI, the API and the command line say it."""
SWEEP_MIN_AGE_S = 24 * 3600
"""An image file no row refers to is left alone this long: an import writes its files before
it commits their rows, and a long import commits once at the end."""


class ImageGone(FacetError):
    """No image with that id: there never was one, or it was deleted (``deletion`` says when)."""

    def __init__(self, image_id: int, deletion: "DeletionRecord | None" = None) -> None:
        when = ""
        if deletion is not None:
            who = (f"by {deletion.deleted_by}" if deletion.deleted_by is not None
                   else "from the command line or the open mode"
                   if deletion.deleted_by_id is None else "by a removed user")
            when = f" (deleted {deletion.deleted_at:%Y-%m-%d %H:%M} UTC {who})"
        super().__init__(f"no image with id {image_id}{when}")
        self.image_id = image_id
        self.deletion = deletion


@dataclass(frozen=True)
class DeletionRecord:
    """A :class:`db.models.Deletion` row as plain data, with the user's name.

    ``files`` is the number of files the deletion removes from disk (as recorded); after
    :func:`remove_files` (``files_done``), ``files_removed`` says how many were there and
    went, ``files_failed`` how many could not be removed (a sweep retries them).
    """

    id: int
    image_id: int
    deleted_by_id: int | None
    deleted_by: str | None
    deleted_at: datetime
    reason: str | None
    revisions: int
    predictions: int
    sam_embeddings: int
    files: int
    files_removed: int = 0
    files_failed: int = 0
    files_done: bool = False

    @classmethod
    def of(cls, row: Deletion, user_name: str | None) -> "DeletionRecord":
        return cls(row.id, row.image_id, row.deleted_by_id, user_name, row.deleted_at, row.reason,
                   row.revisions, row.predictions, row.sam_embeddings, row.files)

    def removed_line(self) -> str:
        """``"3 revisions, 1 prediction, 1 SAM embedding, 2 files"`` (files removed from
        disk once :func:`remove_files` ran, else those recorded)."""
        def n(count: int, what: str) -> str:
            return f"{count} {what}{'' if count == 1 else 's'}"
        files = self.files_removed if self.files_done else self.files
        return ", ".join([n(self.revisions, "revision"), n(self.predictions, "prediction"),
                          n(self.sam_embeddings, "SAM embedding"), n(files, "file")])

    def as_dict(self) -> dict:
        out = asdict(self)
        out["deleted_at"] = self.deleted_at.isoformat()
        return out


@dataclass(frozen=True)
class PendingDeletion:
    """What :func:`delete_image` did in the transaction, and the files to remove once it
    committed. The paths are never stored anywhere (their names are content hashes)."""

    record: DeletionRecord
    files: tuple[Path, ...]


def _clean_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise FacetError(f"the reason is {len(reason)} characters long (at most {MAX_REASON})")
    return reason or None


def last_deletion(session: Session, image_id: int) -> DeletionRecord | None:
    """The newest deletion record of ``image_id``, or ``None``."""
    row = session.scalar(select(Deletion).where(Deletion.image_id == image_id)
                         .order_by(Deletion.id.desc()).limit(1))
    return None if row is None else _record(session, row)


def list_deletions(session: Session) -> list[DeletionRecord]:
    """Every deletion record, newest first."""
    rows = session.scalars(select(Deletion).order_by(Deletion.id.desc())).all()
    return [_record(session, row) for row in rows]


def _record(session: Session, row: Deletion) -> DeletionRecord:
    name = session.scalar(select(User.name).where(User.id == row.deleted_by_id)) \
        if row.deleted_by_id is not None else None
    return DeletionRecord.of(row, name)


def embedding_files(settings: Settings, image_id: int) -> list[Path]:
    """Every SAM embedding file of ``image_id`` on disk, of any SAM model, with or without a
    row (``<cache dir>/sam/*/{image_id}.npz``, the layout of :func:`db.cache.embedding_path`)."""
    return sorted((settings.cache_dir / "sam").glob(f"*/{int(image_id)}.npz"))


def _inside(settings: Settings, path: Path) -> bool:
    """Whether ``path`` lies under the data dir (a row never makes us remove anything else)."""
    try:
        path.resolve().relative_to(settings.data_dir.resolve())
    except ValueError:
        return False
    return True


def delete_image(session: Session, settings: Settings, image_id: int, deleted_by: int | None,
                 reason: str | None = None) -> PendingDeletion:
    """Delete the image ``image_id`` with its revisions, predictions and SAM embedding rows,
    and add its :class:`db.models.Deletion` record; flushes, the caller commits. Then call
    :func:`remove_files` with the result — only after the commit succeeded.

    ``deleted_by``: the acting user's id (``None``: the command line or the open mode).
    ``reason``: optional free text (at most :data:`MAX_REASON` characters). Raises
    :class:`ImageGone` when there is no such image (nothing changed).
    """
    reason = _clean_reason(reason)
    if session.get_bind().dialect.name == "sqlite":
        # Zero the freed pages instead of leaving the deleted rows (label maps, file name,
        # hash) readable in the database file until SQLite reuses them.
        session.execute(text("PRAGMA secure_delete=ON"))
    image = session.get(Image, image_id)
    if image is None:
        raise ImageGone(image_id, last_deletion(session, image_id))
    files: list[Path] = []
    shared = session.scalar(select(func.count()).select_from(Image).where(
        Image.file_path == image.file_path, Image.id != image.id))
    if not shared:  # content-addressed, so never shared; but never remove another image's file
        files.append(settings.data_dir / image.file_path)
    rows = session.scalars(select(SamEmbedding.path).where(SamEmbedding.image_id == image_id)).all()
    files += [settings.data_dir / p for p in rows]
    files += embedding_files(settings, image_id)
    unique = tuple(dict.fromkeys(p for p in files if _inside(settings, p)))

    own_revisions = select(Revision.id).where(Revision.image_id == image_id)
    session.execute(update(Revision).where(Revision.parent_id.in_(own_revisions))
                    .values(parent_id=None).execution_options(synchronize_session=False))
    counts = {
        "revisions": session.execute(delete(Revision).where(Revision.image_id == image_id)
                                     .execution_options(synchronize_session=False)).rowcount,
        "predictions": session.execute(delete(Prediction).where(Prediction.image_id == image_id)
                                       .execution_options(synchronize_session=False)).rowcount,
        "sam_embeddings": session.execute(
            delete(SamEmbedding).where(SamEmbedding.image_id == image_id)
            .execution_options(synchronize_session=False)).rowcount,
    }
    session.expunge(image)
    gone = session.execute(delete(Image).where(Image.id == image_id)
                           .execution_options(synchronize_session=False)).rowcount
    if gone != 1:  # another writer deleted it meanwhile
        raise ImageGone(image_id, last_deletion(session, image_id))
    row = Deletion(image_id=image_id, deleted_by_id=deleted_by, deleted_at=utcnow(),
                   reason=reason, files=sum(1 for p in unique if p.exists()), **counts)
    session.add(row)
    session.flush()
    return PendingDeletion(_record(session, row), unique)


def checkpoint_wal(session: Session, wait_ms: int = 2000) -> bool:
    """SQLite: copy the write-ahead log into the database file and truncate it, so the pages
    a deletion zeroed have no older copy left in ``facet.db-wal``. Waits at most ``wait_ms``
    for other connections; True when the log was emptied (always True on other databases).
    Call it in a fresh session after the deletion committed."""
    if session.get_bind().dialect.name != "sqlite":
        return True
    conn = session.connection()
    usual = int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar())  # the engine's setting
    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(wait_ms)}")
    try:
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={usual}")
    return busy == 0


def remove_files(settings: Settings, pending: PendingDeletion) -> DeletionRecord:
    """Remove the files of a committed deletion (and any embedding file of the image a worker
    wrote meanwhile); the record with ``files_removed`` / ``files_failed`` filled in.

    Call it only after the transaction of :func:`delete_image` committed: if the commit
    failed, the image still exists and its files must stay. A file that cannot be removed is
    left for :func:`sweep_orphans`; a missing one counts as neither.
    """
    paths = dict.fromkeys(pending.files)
    paths.update(dict.fromkeys(embedding_files(settings, pending.record.image_id)))
    removed = failed = 0
    for path in paths:
        if not _inside(settings, path):
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            failed += 1
    return replace(pending.record, files_removed=removed, files_failed=failed, files_done=True)


@dataclass(frozen=True)
class SweepReport:
    """What :func:`sweep_orphans` found: ``orphans`` (removed unless it was a dry run) and
    how many unreferenced image files it left alone for being younger than ``min_age_s``."""

    orphans: tuple[Path, ...]
    young: int
    removed: bool

    def line(self) -> str:
        verb = "removed" if self.removed else "would remove"
        young = (f"; left {self.young} newer unreferenced file(s) alone (an import may be "
                 "writing them)" if self.young else "")
        return f"{verb} {len(self.orphans)} orphan file(s){young}"


def _old(path: Path, min_age_s: float, now: float) -> bool:
    try:
        return now - path.stat().st_mtime >= min_age_s
    except FileNotFoundError:
        return False


def sweep_orphans(session: Session, settings: Settings, *, min_age_s: float = SWEEP_MIN_AGE_S,
                  dry_run: bool = False, now: float | None = None) -> SweepReport:
    """Find (and unless ``dry_run`` remove) files under the data dir that no row refers to:

    - SAM embedding files (``cache/sam/*/{id}.npz``) of an image id that has no image row —
      left by a crash between a deletion's commit and its file removal, or written by a
      worker while the image was being deleted (embeddings are only ever computed for
      committed images, so these are orphans at any age);
    - image files (``images/*``) no image row names, and temporary files of interrupted
      writes, once older than ``min_age_s`` (an import writes its files before it commits).

    ``now`` (``time.time()``) is for tests.
    """
    now = time.time() if now is None else now
    image_ids = set(session.scalars(select(Image.id)).all())
    known_files = set(session.scalars(select(Image.file_path)).all())
    orphans: list[Path] = []
    young = 0
    for path in sorted((settings.cache_dir / "sam").glob("*/*")):
        if not path.is_file():
            continue
        if path.suffix == ".npz" and path.stem.isdigit():
            if int(path.stem) not in image_ids:
                orphans.append(path)
        elif path.name.startswith(".") and path.suffix == ".tmp" and _old(path, min_age_s, now):
            orphans.append(path)
    if settings.images_dir.is_dir():
        for path in sorted(settings.images_dir.iterdir()):
            if not path.is_file():
                continue
            if path.relative_to(settings.data_dir).as_posix() in known_files:
                continue
            if _old(path, min_age_s, now):
                orphans.append(path)
            else:
                young += 1
    if not dry_run:
        for path in orphans:
            path.unlink(missing_ok=True)
    return SweepReport(tuple(orphans), young, not dry_run)
