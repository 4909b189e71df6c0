"""Shared fixtures: a temp data dir with a migrated SQLite database, and small row helpers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.database import open_database
from db.models import Image
from db.settings import Settings
from model.imageio import encode_label_png


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


def label_png(value: int = 1, size: tuple[int, int] = (8, 8)) -> bytes:
    """A ``size`` = (width, height) label-map PNG filled with id ``value``."""
    return encode_label_png(np.full((size[1], size[0]), value, dtype=np.uint8))


def insert_image(session: Session, k: int, priority: float | None = None,
                 label_size: tuple[int, int] = (8, 8), split: str = "train") -> Image:
    """An image row (no file on disk; repository functions here never read it)."""
    image = Image(k=k, sha256=f"{k:064x}", file_path=f"images/{k}.png", width=label_size[0],
                  height=label_size[1], label_width=label_size[0], label_height=label_size[1],
                  source_name=f"{k}.png", split=split, priority=priority)
    session.add(image)
    session.flush()
    return image
