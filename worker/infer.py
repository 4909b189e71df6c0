"""Pre-annotation and uncertainty scoring of images with a model version (MONAILabel's "infer").

One forward pass gives both: the label map cached in :class:`db.models.Prediction` (what the
annotator starts from) and the image's uncertainty score. When the version is the active one,
the score also becomes ``Image.priority`` (with ``scored_by_id``), which orders the annotation
queue: most uncertain first (:mod:`db.annotation_queue`).
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from sqlalchemy.orm import Session

from db.cache import get_prediction
from db.models import ModelVersion
from db.settings import Settings


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
        predictor = Predictor.load(path, device=device_for(self.device))
        self._items[key] = predictor
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return predictor


def checkpoint_file(settings: Settings, version: ModelVersion) -> Path:
    """Absolute path of a version's checkpoint (stored relative to the data dir)."""
    return settings.data_dir / version.checkpoint_path




def needs_prediction(session: Session, image_id: int, version_id: int) -> bool:
    """True when no pre-annotation of the image by that version is cached."""
    return get_prediction(session, image_id, version_id) is None
