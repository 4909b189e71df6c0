"""Pre-annotation and uncertainty scoring of images with a model version (MONAILabel's "infer").

One forward pass gives both: the label map cached in :class:`db.models.Prediction` (what the
annotator starts from) and the image's uncertainty score. When the version is the active one,
the score also becomes ``Image.priority`` (with ``scored_by_id``), which orders the annotation
queue: most uncertain first (:mod:`db.annotation_queue`).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from db.cache import get_prediction, put_prediction
from db.images import read_image
from db.models import Image, ModelVersion
from db.settings import Settings
from db.versions import active_version
from model.imageio import encode_label_png


def resize_labels(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``H x W`` uint8 label map to ``size = (width, height)``."""
    if (label.shape[1], label.shape[0]) == tuple(size):
        return label
    return np.asarray(PILImage.fromarray(label).resize(size, PILImage.NEAREST), dtype=np.uint8)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``H x W x 3`` uint8 image to ``size = (width, height)``."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(PILImage.fromarray(image).resize(size, PILImage.BILINEAR), dtype=np.uint8)


def device_for(name: str) -> str:
    """``"auto"`` → ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others are checked."""
    from model.devices import resolve_device

    return str(resolve_device(name))


class PredictorCache:
    """Loaded predictors by checkpoint file, newest ``size`` kept; one per worker process.

    Built by :func:`worker.tasks.register_tasks` (never a module global). A file is reloaded
    when its modification time changes.
    """

    def __init__(self, size: int = 2, device: str = "auto", threads: int | None = None) -> None:
        self.size = size
        self.device = device
        self.threads = threads
        self._items: OrderedDict[tuple[str, int], object] = OrderedDict()

    def get(self, path: Path):  # -> model.inference.Predictor
        from model.inference import Predictor

        path = Path(path)
        key = (str(path), path.stat().st_mtime_ns)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        predictor = Predictor.load(path, device=device_for(self.device), threads=self.threads)
        self._items[key] = predictor
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return predictor


def checkpoint_file(settings: Settings, version: ModelVersion) -> Path:
    """Absolute path of a version's checkpoint (stored relative to the data dir)."""
    return settings.data_dir / version.checkpoint_path


def predict_image(session: Session, settings: Settings, predictor, image: Image,
                  version: ModelVersion, *, is_active: bool | None = None) -> float:
    """Pre-annotate ``image`` with ``version`` and store it; returns the uncertainty score.

    The image is resized to its label size (``label_width x label_height``, what the annotator
    paints on) before the forward pass, and the label map is stored at that size. When
    ``version`` is the active one (``is_active``; looked up when ``None``) the score is written
    to ``image.priority`` and ``image.scored_by_id``. Flushes; the caller commits.
    """
    size = (image.label_width, image.label_height)
    pixels = resize_image(read_image(settings, image), size)
    label, _confidence, score = predictor.predict_with_uncertainty(pixels)
    label = resize_labels(np.asarray(label, dtype=np.uint8), size)
    put_prediction(session, image.id, version.id, encode_label_png(label), float(score),
                   num_classes=predictor.labels.num_classes)
    if is_active is None:
        current = active_version(session)
        is_active = current is not None and current.id == version.id
    if is_active:
        image.priority, image.scored_by_id = float(score), version.id
    session.flush()
    return float(score)


def needs_prediction(session: Session, image_id: int, version_id: int) -> bool:
    """True when no pre-annotation of the image by that version is cached."""
    return get_prediction(session, image_id, version_id) is None
