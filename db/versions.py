"""Published model versions: add one (inactive), activate one (exactly one active), list."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.errors import FacetError
from db.models import ModelVersion
from db.settings import Settings


def add_version(session: Session, checkpoint_path: str, config: dict[str, Any],
                metrics: dict[str, Any], parent_id: int | None = None, job_id: int | None = None,
                num_labels: int = 0, note: str | None = None) -> ModelVersion:
    """Record a checkpoint (path relative to the data dir) as a new, inactive version.

    ``metrics`` holds at least ``mean_f1`` when the version was evaluated; ``num_labels`` is
    how many labelled images it was trained on.
    """
    if not checkpoint_path:
        raise FacetError("a model version needs a checkpoint path")
    if num_labels < 0:
        raise FacetError(f"num_labels must be >= 0, got {num_labels}")
    if parent_id is not None and session.get(ModelVersion, parent_id) is None:
        raise FacetError(f"no model version with id {parent_id}")
    version = ModelVersion(checkpoint_path=str(checkpoint_path), config=dict(config),
                           metrics=dict(metrics), parent_id=parent_id, job_id=job_id,
                           num_labels=num_labels, is_active=False, note=note)
    session.add(version)
    session.flush()
    return version


def checkpoint_file(settings: Settings, version: ModelVersion) -> Path:
    """Absolute path of a version's checkpoint (stored relative to the data dir)."""
    return settings.data_dir / version.checkpoint_path


def get_version(session: Session, version_id: int) -> ModelVersion | None:
    return session.get(ModelVersion, version_id)


def active_version(session: Session) -> ModelVersion | None:
    """The version pre-annotations come from; ``None`` before the first activation."""
    return session.scalar(select(ModelVersion).where(ModelVersion.is_active.is_(True))
                          .order_by(ModelVersion.id.desc()).limit(1))


def activate(session: Session, version_id: int) -> ModelVersion:
    """Make ``version_id`` the only active version (promotion or rollback)."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise FacetError(f"no model version with id {version_id}")
    session.execute(update(ModelVersion).where(ModelVersion.id != version_id,
                                               ModelVersion.is_active.is_(True))
                    .values(is_active=False))
    session.execute(update(ModelVersion).where(ModelVersion.id == version_id)
                    .values(is_active=True))
    session.flush()
    return version


def list_versions(session: Session) -> list[ModelVersion]:
    """All versions, newest first."""
    return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())))
