"""Small look-ups around a model version: its checkpoint file, its device, a cached prediction.

The pre-annotation and uncertainty score themselves come from one forward pass in
:func:`db.cache.store_prediction` (shared with the web process); loaded parsers are kept by
:class:`model.predictor_cache.PredictorCache`, one per worker process
(:class:`worker.context.WorkerContext`).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from db.cache import get_prediction
from db.models import ModelVersion
from db.settings import Settings


def device_for(name: str) -> str:
    """``"auto"`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others are checked."""
    from model.devices import resolve_device

    return str(resolve_device(name))


def checkpoint_file(settings: Settings, version: ModelVersion) -> Path:
    """Absolute path of a version's checkpoint (stored relative to the data dir)."""
    return settings.data_dir / version.checkpoint_path


def needs_prediction(session: Session, image_id: int, version_id: int) -> bool:
    """True when no pre-annotation of the image by that version is cached."""
    return get_prediction(session, image_id, version_id) is None
