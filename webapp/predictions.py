"""Pre-annotations from the active parser version, cached per image and version.

The active version is looked up on every call (one indexed query), so a version activated by
the worker or the Models view is used by the next request without a restart. Loaded
predictors are kept by version id, newest :attr:`ParserService.keep` only.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from db.cache import get_prediction, store_prediction
from db.engine import session_scope
from db.models import ModelVersion
from db.revisions import require_image
from db.settings import Settings
from db.versions import active_version
from core.imageio import decode_label_png
from core.labels import LabelSet


@dataclass(frozen=True)
class VersionInfo:
    """What the UI says about a model version: id, validation mean F1, labels trained on."""

    id: int
    mean_f1: float | None
    num_labels: int

    @classmethod
    def of(cls, version: ModelVersion) -> "VersionInfo":
        f1 = version.metrics.get("mean_f1") if version.metrics else None
        return cls(version.id, float(f1) if f1 is not None else None, version.num_labels)

    def describe(self) -> str:
        f1 = f"validation mean F1 {self.mean_f1:.3f}" if self.mean_f1 is not None else "not evaluated"
        return f"model v{self.id} ({f1}, trained on {self.num_labels} labelled images)"


@dataclass(frozen=True)
class PredictionResult:
    """``labels``: ``H x W`` uint8 at the image's label size; ``version`` None = no model yet."""

    labels: np.ndarray
    version: VersionInfo | None
    computed: bool


class ParserService:
    """Predictors by version id and the prediction cache. One per server, thread-safe."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], labels: LabelSet,
                 keep: int = 2) -> None:
        self.settings = settings
        self.sessions = sessions
        self.labels = labels
        self.keep = keep
        self._lock = threading.Lock()      # guards _loaded and serialises forward passes
        self._loaded: OrderedDict[int, object] = OrderedDict()

    def active(self) -> VersionInfo | None:
        """The active version now (a fresh query each call)."""
        with session_scope(self.sessions) as session:
            version = active_version(session)
            return VersionInfo.of(version) if version is not None else None

    def _predictor(self, version: ModelVersion):  # -> model.inference.Predictor
        from model.inference import Predictor  # torch import only when a model exists

        if version.id in self._loaded:
            self._loaded.move_to_end(version.id)
            return self._loaded[version.id]
        predictor = Predictor.load(self.settings.data_dir / version.checkpoint_path)
        self._loaded[version.id] = predictor
        while len(self._loaded) > self.keep:
            self._loaded.popitem(last=False)
        return predictor

    def loaded_versions(self) -> list[int]:
        """Version ids with a predictor in memory, oldest first."""
        with self._lock:
            return list(self._loaded)

    def prediction(self, image_id: int) -> PredictionResult:
        """The active model's label map for an image: cached, or computed now and cached.

        Before any model exists: an all-background map and ``version=None``.
        """
        with session_scope(self.sessions) as session:
            image = require_image(session, image_id)
            size = (image.label_width, image.label_height)
            version = active_version(session)
            if version is None:
                return PredictionResult(np.zeros(size[::-1], np.uint8), None, False)
            row = get_prediction(session, image_id, version.id)
            if row is not None:
                return PredictionResult(decode_label_png(row.label_png, 256), VersionInfo.of(version),
                                        False)
        with self._lock, session_scope(self.sessions) as session:
            image = require_image(session, image_id)
            version = session.get(ModelVersion, version.id)
            row = get_prediction(session, image_id, version.id)
            if row is not None:  # computed by someone else while we waited
                return PredictionResult(decode_label_png(row.label_png, 256), VersionInfo.of(version),
                                        False)
            label = store_prediction(session, self.settings, self._predictor(version), image,
                                     version, is_active=True)
            return PredictionResult(label, VersionInfo.of(version), True)
