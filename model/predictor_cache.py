"""Loaded predictors by checkpoint file: the one cache of the web process and of each worker.

A file is loaded once and kept while it is among the ``keep`` most recently used; it is
reloaded when its modification time changes (a checkpoint rewritten in place). Thread-safe:
the studio serves several requests at once, and :meth:`PredictorCache.lock` also serialises
forward passes for callers that share one predictor between threads.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from model.inference import Predictor


class PredictorCache:
    """``get(path)`` → a loaded :class:`~model.inference.Predictor` on ``device``.

    One per process (built at its edge and passed down, never a module global).
    """

    def __init__(self, keep: int = 2, device: str = "auto") -> None:
        self.keep = keep
        self.device = device
        self.lock = threading.RLock()
        """Held while loading; callers may hold it around a forward pass too."""
        self._items: OrderedDict[tuple[str, int], Predictor] = OrderedDict()

    def get(self, path: str | os.PathLike) -> Predictor:
        """The predictor of the checkpoint at ``path`` (loaded now if needed).

        Raises :class:`core.errors.FacetError` for a missing or damaged file.
        """
        path = Path(path)
        key = (str(path.resolve()), path.stat().st_mtime_ns if path.exists() else -1)
        with self.lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            predictor = Predictor.load(path, device=self.device)
            self._items[key] = predictor
            while len(self._items) > self.keep:
                self._items.popitem(last=False)
            return predictor

    def loaded(self) -> list[str]:
        """Resolved paths of the checkpoints in memory, least recently used first."""
        with self.lock:
            return [path for path, _ in self._items]
