"""Pre-annotations from the active parser version, cached per image and version.

The active version is looked up on every call (one indexed query), so a version activated by
the worker or the Models view is used by the next request without a restart. Normally the
worker has cached the prediction already; without one (``serve --no-worker``) it is computed
here on first need and cached the same way (:func:`db.cache.store_prediction`). Loaded
predictors live in one :class:`model.predictor_cache.PredictorCache`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.imageio import decode_label_png
from core.labels import LabelSet
from db.cache import get_prediction, store_prediction
from db.engine import session_scope
from db.models import Image
from db.settings import Settings
from db.versions import active_version
from webapp.records import VersionInfo


@dataclass(frozen=True)
class PredictionResult:
    """``labels``: ``H x W`` uint8 at the image's label size; ``version`` None = no model yet."""

    labels: np.ndarray
    version: VersionInfo | None
    computed: bool


class PredictionService:
    """The active model's label maps. One per server, thread-safe."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], labels: LabelSet,
                 keep: int = 2) -> None:
        self.settings = settings
        self.sessions = sessions
        self.labels = labels
        self.keep = keep
        self._cache = None          # model.predictor_cache.PredictorCache, built on first need
        self._version_of: dict[str, int] = {}   # checkpoint path → version id (for reports)

    def active(self) -> VersionInfo | None:
        """The active version now (a fresh query each call)."""
        with session_scope(self.sessions) as session:
            return self.active_in(session)

    @staticmethod
    def active_in(session: Session) -> VersionInfo | None:
        version = active_version(session)
        return VersionInfo.of(version) if version is not None else None

    def _predictors(self):  # -> model.predictor_cache.PredictorCache
        if self._cache is None:
            from model.predictor_cache import PredictorCache  # torch only once a model exists

            self._cache = PredictorCache(keep=self.keep, device="auto")
        return self._cache

    def loaded_versions(self) -> list[int]:
        """Version ids with a predictor in memory, least recently used first."""
        if self._cache is None:
            return []
        return [self._version_of[path] for path in self._cache.loaded()]

    def prediction(self, image_id: int) -> PredictionResult:
        """The active model's label map for an image, in a session of its own."""
        with session_scope(self.sessions) as session:
            return self.prediction_in(session, session.get(Image, image_id))

    def prediction_in(self, session: Session, image: Image) -> PredictionResult:
        """The active model's label map for ``image``: cached, or computed now and cached
        (flushed in ``session``; the caller commits). Before any model exists: an
        all-background map and ``version=None``."""
        version = active_version(session)
        if version is None:
            return PredictionResult(np.zeros((image.label_height, image.label_width), np.uint8),
                                    None, False)
        info = VersionInfo.of(version)
        row = get_prediction(session, image.id, version.id)
        if row is not None:
            return PredictionResult(decode_label_png(row.label_png, 256), info, False)
        cache = self._predictors()
        path = self.settings.data_dir / version.checkpoint_path
        with cache.lock:  # one forward pass at a time; a waiting request then finds it cached
            row = get_prediction(session, image.id, version.id)
            if row is not None:
                return PredictionResult(decode_label_png(row.label_png, 256), info, False)
            predictor = cache.get(path)
            self._version_of[str(path.resolve())] = version.id
            label = store_prediction(session, self.settings, predictor, image, version,
                                     is_active=True)
        return PredictionResult(label, info, True)
