"""Evaluation protocol: predictions at label-map resolution, one confusion matrix over the set,
per-class F1 and mean F1 over the 18 non-background classes (see :class:`ConfusionMatrix`)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from model.inference import Predictor
from model.metrics import ConfusionMatrix


def evaluate(predictor: Predictor, samples: Iterable[tuple[np.ndarray, np.ndarray]],
             batch_size: int = 8,
             on_image: Callable[[int], None] | None = None) -> dict[str, Any]:
    """``samples``: ``(image H x W x 3 uint8, label h x w uint8)`` pairs; predictions are made
    at ``h x w``. Returns ``{"mean_f1", "per_class_f1": {name: f1 | None}, "pixel_accuracy",
    "n_images"}`` with F1 values in [0, 1]."""
    cm = ConfusionMatrix(predictor.labels)
    batch: list[tuple[np.ndarray, np.ndarray]] = []

    def flush() -> None:
        sizes = {gt.shape for _, gt in batch}
        for size in sizes:
            group = [(im, gt) for im, gt in batch if gt.shape == size]
            preds = predictor.predict_batch([im for im, _ in group], size=size)
            for (pred, _), (_, gt) in zip(preds, group):
                cm.update(pred, gt)
                if on_image is not None:
                    on_image(cm.n_images)
        batch.clear()

    for sample in samples:
        batch.append(sample)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return {"mean_f1": cm.mean_f1(), "per_class_f1": cm.per_class_f1(),
            "pixel_accuracy": cm.pixel_accuracy(), "n_images": cm.n_images}
