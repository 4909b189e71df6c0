"""SQLAlchemy 2 typed models: images, annotation revisions, users, model versions, jobs, caches.

Label maps are stored as PNG bytes (mode L, lossless) inside the revision row, so a revision
and its pixels commit together. Image files and SAM embeddings live under the data dir; rows
hold paths relative to it.
"""
from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, Enum, Float, ForeignKey, Integer, LargeBinary,
                        MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MAX_ID = 2**31 - 1
"""The largest id or revision number a row can have: they are ``INTEGER`` columns, 32-bit on
PostgreSQL (a larger number in a query is a driver error there, and past 64 bits on SQLite)."""


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot go into (or be compared in) the database as it is, or ``None``:
    PostgreSQL refuses NUL characters in text, and neither database takes lone surrogates."""
    if "\x00" in text:
        return "must not contain NUL characters (\\x00)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogates)"
    return None


def utcnow() -> datetime:
    """Naive UTC now (what SQLite stores and returns)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Role(str, enum.Enum):
    """Ordered: annotator < reviewer < admin."""

    annotator = "annotator"
    reviewer = "reviewer"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ["annotator", "reviewer", "admin"].index(self.value)

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


class RevisionState(str, enum.Enum):
    draft = "draft"
    submitted = "submitted"
    approved = "approved"
    rejected = "rejected"


class Origin(str, enum.Enum):
    human = "human"       # painted in the studio or sent over the API
    model = "model"       # an accepted pre-annotation
    imported = "imported"  # came with the files (CelebAMask-HQ masks)


class JobState(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=16, validate_strings=True,
                values_callable=lambda e: [m.value for m in e])


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(_enum(Role))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    """A face image. ``k`` is its CelebAMask-HQ id on export (unique, kept from an import).

    Ids are never reused (SQLite ``AUTOINCREMENT``): a deleted image's id stays its own in the
    :class:`Deletion` record, in job params that list image ids, and in embedding file names.
    """

    __tablename__ = "images"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    k: Mapped[int] = mapped_column(Integer, unique=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    file_path: Mapped[str] = mapped_column(String(512))        # relative to the data dir
    width: Mapped[int] = mapped_column(Integer)                # image pixels
    height: Mapped[int] = mapped_column(Integer)
    label_width: Mapped[int] = mapped_column(Integer)          # label-map pixels (512 for CelebAMask-HQ)
    label_height: Mapped[int] = mapped_column(Integer)
    source_name: Mapped[str] = mapped_column(String(512))      # original file name
    source_k: Mapped[int | None] = mapped_column(Integer)      # id in the CelebAMask-HQ tree it came from
    split: Mapped[str] = mapped_column(String(8), default="train")  # train | val | test
    priority: Mapped[float | None] = mapped_column(Float, index=True)  # uncertainty score; higher = annotate first
    scored_by_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    lease_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    revisions: Mapped[list["Revision"]] = relationship(
        back_populates="image", order_by="Revision.id", passive_deletes=True)


class Revision(Base):
    """One saved label map of an image. Append-only: rows are never updated.

    ``revision`` numbers the image's main line 1, 2, 3…; a save that lost a conflict is kept
    with ``revision = None`` (and its ``parent_id``), so no work is ever lost.
    """

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("image_id", "revision", name="uq_revisions_image_revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id", ondelete="SET NULL"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    state: Mapped[RevisionState] = mapped_column(_enum(RevisionState))
    origin: Mapped[Origin] = mapped_column(_enum(Origin))
    label_png: Mapped[bytes] = mapped_column(LargeBinary)
    comment: Mapped[str | None] = mapped_column(Text)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"))  # which model pre-annotated it
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)

    image: Mapped[Image] = relationship(back_populates="revisions")
    author: Mapped[User | None] = relationship()


class ModelVersion(Base):
    """A published parser checkpoint with its validation metrics."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    checkpoint_path: Mapped[str] = mapped_column(String(512))  # relative to the data dir
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # mean_f1, per_class_f1, ...
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    num_labels: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Job(Base):
    """A background task as the UI sees it: kind, state, progress, error."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))      # train | embed | predict | score
    state: Mapped[JobState] = mapped_column(_enum(JobState), default=JobState.queued)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime)  # last progress report (heartbeat)

    points: Mapped[list["JobPoint"]] = relationship(order_by="JobPoint.step", passive_deletes=True)


class JobPoint(Base):
    """One logged training step of a job (for the loss curve)."""

    __tablename__ = "job_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"loss": …, "ce": …, "edge": …, "kd": …, "rate": …}
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Prediction(Base):
    """A cached pre-annotation of one image by one model version."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("image_id", "model_version_id",
                                       name="uq_predictions_image_model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    label_png: Mapped[bytes] = mapped_column(LargeBinary)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SamEmbedding(Base):
    """A cached SAM image embedding (float16 ``.npy`` under the data dir)."""

    __tablename__ = "sam_embeddings"
    __table_args__ = (UniqueConstraint("image_id", "sam_model", name="uq_sam_embeddings_image_model"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    sam_model: Mapped[str] = mapped_column(String(128))  # e.g. "vit_b:<checkpoint sha256[:12]>"
    path: Mapped[str] = mapped_column(String(512))       # relative to the data dir
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Deletion(Base):
    """That an image was deleted (``python app.py delete-image``, ``DELETE /api/images/{id}``,
    the Dataset tab): which id, by whom, when, why, and how much went with it.

    Nothing else about the image is kept — no file name, no content hash, no pixels, no label
    map: faces are personal data, and a deletion request is honoured completely. ``image_id``
    is a bare number (no foreign key: the image is gone; ids are never reused).
    ``deleted_by_id`` is ``None`` for the command line and the open (no users) mode.
    """

    __tablename__ = "deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(Integer, index=True)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    deleted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    revisions: Mapped[int] = mapped_column(Integer, default=0)       # rows removed
    predictions: Mapped[int] = mapped_column(Integer, default=0)
    sam_embeddings: Mapped[int] = mapped_column(Integer, default=0)
    files: Mapped[int] = mapped_column(Integer, default=0)           # files on disk to remove
