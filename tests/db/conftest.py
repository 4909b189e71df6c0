"""Small row helpers for the db tests (the ``settings``/``sessions`` fixtures are in tests/conftest.py)."""
from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from core.imageio import encode_label_png
from db.models import Image


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
