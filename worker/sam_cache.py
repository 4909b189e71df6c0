"""The SAM model a worker process keeps loaded for ``facet.embed`` (one at a time).

The embedding itself is computed and stored by :func:`db.cache.store_embedding`, the one SAM
embedding path of the studio and the worker: ``<cache dir>/sam/<model type>-<sha12>/<image
id>.npz`` (float16 features), recorded under the model's key ``"<type>:<sha12>"``.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from model.sam_types import file_digest

if TYPE_CHECKING:
    from model.sam import SamModel


class SamCache:
    """Loaded SAM models by (checkpoint, type); at most one kept per worker process."""

    def __init__(self, builders: Mapping | None = None) -> None:
        self.builders = builders
        """Architecture builders by model type (``None``: segment_anything's registry)."""
        self._key: tuple[str, str] | None = None
        self._model: SamModel | None = None
        self._digests: dict[tuple[str, int, int], str] = {}

    def get(self, checkpoint: str | Path, model_type: str) -> SamModel:
        """The model of ``checkpoint`` (a ``.pth`` file) as architecture ``model_type``
        (``vit_b`` …); a different one replaces the model kept so far."""
        from model.sam import SamModel

        key = (str(Path(checkpoint).resolve()), model_type)
        if self._key != key or self._model is None:
            self._model = SamModel.from_checkpoint(checkpoint, model_type, builders=self.builders)
            self._key = key
        return self._model

    def key_for(self, checkpoint: str | Path, model_type: str) -> str:
        """The cache key (``"<type>:<sha256[:12]>"``) that :attr:`SamModel.key` of this
        checkpoint has, without loading the model or importing torch: the file's digest, kept
        per path, size and modification time (a sweep, :mod:`worker.recovery`, asks every few
        minutes). ``OSError`` for a missing file."""
        path = Path(checkpoint).resolve()
        if self._key == (str(path), model_type) and self._model is not None:
            return self._model.key
        stat = path.stat()
        ident = (str(path), stat.st_size, stat.st_mtime_ns)
        if ident not in self._digests:
            self._digests[ident] = file_digest(path)
        return f"{model_type}:{self._digests[ident][:12]}"
