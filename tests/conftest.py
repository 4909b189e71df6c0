"""Fixtures shared across the test packages: a temp data dir with a migrated SQLite database."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.database import open_database
from db.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh data dir under ``tmp_path`` (SQLite file, SQLite queue)."""
    return Settings.resolve(data_dir=tmp_path / "data", env={})


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    """A session factory over the migrated database of :func:`settings`."""
    factory = open_database(settings)
    yield factory
    factory.kw["bind"].dispose()
