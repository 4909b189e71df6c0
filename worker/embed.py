"""SAM image embeddings computed in the background, so a click never waits for the encoder.

The checkpoint path and model type travel as task arguments (the web process knows them from
``serve --sam-checkpoint/--sam-model``); a task that gets none uses ``FACET_SAM_CHECKPOINT`` /
``FACET_SAM_MODEL`` from the worker's environment, and does nothing when neither is set.

Files: ``<cache dir>/sam/<model type>-<sha12>/<image id>.npz`` (float16 features, written
atomically by :meth:`model.sam.SamEmbedding.save`), recorded by
:func:`db.cache.put_embedding_row` under the model's key ``"<type>:<sha12>"``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.orm import Session

from db.cache import embedding_path, get_embedding_row, put_embedding_row
from db.images import read_image
from db.models import Image
from db.settings import Settings


def has_embedding(session: Session, settings: Settings, image_id: int, model_key: str) -> bool:
    """True when a row for (image, model) exists and its file is on disk."""
    row = get_embedding_row(session, image_id, model_key)
    return row is not None and (settings.data_dir / row.path).is_file()


def embed_image(session: Session, settings: Settings, sam, image: Image) -> Path:
    """Compute, store and record the embedding of ``image`` with ``sam`` (a ``model.sam.SamModel``).

    Returns the file path. Flushes; the caller commits. The file is complete before its row
    exists, so a reader never finds a row without its file.
    """
    path = embedding_path(settings, sam.key, image.id)
    sam.compute_embedding(read_image(settings, image)).save(path)
    put_embedding_row(session, image.id, sam.key, path.relative_to(settings.data_dir).as_posix())
    return path


class SamCache:
    """Loaded SAM models by (checkpoint, type); at most one kept per worker process."""

    def __init__(self, builders: Mapping | None = None) -> None:
        self.builders = builders
        """Architecture builders by model type (``None``: segment_anything's registry)."""
        self._key: tuple[str, str] | None = None
        self._model = None

    def get(self, checkpoint: str | Path, model_type: str):  # -> model.sam.SamModel
        from model.sam import SamModel

        key = (str(Path(checkpoint).resolve()), model_type)
        if self._key != key:
            self._model = SamModel.from_checkpoint(checkpoint, model_type, builders=self.builders)
            self._key = key
        return self._model
