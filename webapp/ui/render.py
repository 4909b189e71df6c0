"""The photo with its label map blended in, as the Review view shows it (numpy only).
Arrays: ``labels`` ``H x W`` uint8 ids; ``photo`` ``H x W x 3`` uint8 RGB at the label size.
"""
from __future__ import annotations

import numpy as np

from core.labels import LabelSet


def overlay(photo: np.ndarray, labels: np.ndarray, opacity: float, label_set: LabelSet) -> np.ndarray:
    """The photo with every non-background pixel tinted by its class colour.

    ``opacity`` in [0, 1]: 0 shows the photo only, 1 the flat class colours.
    """
    if photo.shape[:2] != labels.shape:
        raise ValueError(f"photo {photo.shape[:2]} and label map {labels.shape} differ in size")
    a = float(np.clip(opacity, 0.0, 1.0))
    colors = label_set.colorize(labels).astype(np.float32)
    out = photo.astype(np.float32)
    fg = labels > 0
    out[fg] = (1 - a) * out[fg] + a * colors[fg]
    return np.rint(out).astype(np.uint8)
