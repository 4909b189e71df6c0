"""Pre-annotations from the active parser version, cached per image and version.

The active version is looked up on every call (one indexed query), so a version activated by
the worker or the Models view is used by the next request without a restart. Normally the
worker has cached the prediction already; when it has not (no worker running, or it has not
got to this image yet) it is computed here on first need and cached the same way
(:func:`db.cache.store_prediction`). Loaded predictors live in one
:class:`model.predictor_cache.PredictorCache`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.imageio import decode_label_png
from db.cache import get_prediction, store_prediction
from db.engine import session_scope
from db.models import Image
from db.revisions import require_image
from db.settings import Settings
from db.versions import active_version, checkpoint_file, list_versions
from model.predictor_cache import PredictorCache
from webapp.records import VersionInfo


@dataclass(frozen=True)
class PredictionResult:
    """``labels``: ``H x W`` uint8 at the image's label size; ``version`` None = no model yet."""

    labels: np.ndarray
    version: VersionInfo | None
    computed: bool


class PredictionService:
    """The active model's label maps. One per server, thread-safe."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], keep: int = 2) -> None:
        self.settings = settings
        self.sessions = sessions
        self._cache = PredictorCache(keep=keep, device="auto")

    def active(self) -> VersionInfo | None:
        """The active version now (a fresh query each call)."""
        with session_scope(self.sessions) as session:
            return self.active_in(session)

    @staticmethod
    def active_in(session: Session) -> VersionInfo | None:
        version = active_version(session)
        return VersionInfo.of(version) if version is not None else None

    def loaded_versions(self) -> list[int]:
        """Version ids with a predictor in memory, least recently used first."""
        with session_scope(self.sessions) as session:
            by_path = {str(checkpoint_file(self.settings, v).resolve()): v.id
                       for v in list_versions(session)}
        return [by_path[path] for path in self._cache.loaded() if path in by_path]

    def prediction(self, image_id: int) -> PredictionResult:
        """The active model's label map for an image, in a session of its own
        (:class:`core.errors.FacetError` for an unknown image)."""
        with session_scope(self.sessions) as session:
            return self.prediction_in(session, require_image(session, image_id))

    def prediction_in(self, session: Session, image: Image) -> PredictionResult:
        """The active model's label map for ``image``: cached, or computed now and cached.
        Computing it commits ``session`` (under the forward-pass lock, so a request waiting
        for the same image then finds it cached). Before any model exists: an
        all-background map and ``version=None``."""
        version = active_version(session)
        if version is None:
            return PredictionResult(np.zeros((image.label_height, image.label_width), np.uint8),
                                    None, False)
        info = VersionInfo.of(version)
        row = get_prediction(session, image.id, version.id)
        if row is not None:
            return PredictionResult(decode_label_png(row.label_png, 256), info, False)
        path = checkpoint_file(self.settings, version)
        with self._cache.lock:  # one forward pass at a time
            row = get_prediction(session, image.id, version.id)
            if row is not None:  # computed by another request while this one waited
                return PredictionResult(decode_label_png(row.label_png, 256), info, False)
            predictor = self._cache.get(path)
            label = store_prediction(session, self.settings, predictor, image, version,
                                     is_active=True)
            session.commit()
        return PredictionResult(label, info, True)
