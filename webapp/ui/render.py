"""Pure numpy helpers between label maps and what the browser shows or sends back.

The ImageEditor gets the photo with the label map blended in as its *background* and an empty
drawing layer. Brush strokes come back in that layer as exact palette colours at alpha 255
(``format="png"``; never WebP), so a stroke is turned back into class ids with
:meth:`LabelSet.from_colors` and everything else keeps its id: bit-exact round trips.
Arrays: ``labels`` ``H x W`` uint8 ids; ``photo`` ``H x W x 3`` uint8 RGB at the label size.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.labels import LabelSet

POSITIVE = (0, 220, 0)
NEGATIVE = (230, 0, 0)
BOX = (255, 255, 255)


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


def editor_value(photo: np.ndarray, labels: np.ndarray, opacity: float,
                 label_set: LabelSet) -> dict[str, Any]:
    """An ``ImageEditor`` value: blended background, no drawing layer yet."""
    return {"background": overlay(photo, labels, opacity, label_set), "layers": [], "composite": None}


def apply_strokes(value: dict[str, Any] | None, labels: np.ndarray,
                  label_set: LabelSet) -> tuple[np.ndarray, int]:
    """Merge the editor's painted pixels into ``labels``; returns ``(new labels, pixels changed)``.

    A painted pixel is one with alpha 255 in any layer (later layers win); its RGB must be a
    palette colour (``ValueError`` naming the pixel otherwise). Unpainted pixels keep their id.
    """
    out = labels.copy()
    for layer in (value or {}).get("layers") or []:
        if layer is None:
            continue
        layer = np.asarray(layer)
        if layer.ndim != 3 or layer.shape[2] != 4:
            raise ValueError(f"editor layer must be H x W x 4 RGBA, got {layer.shape}")
        if layer.shape[:2] != labels.shape:
            raise ValueError(f"editor layer is {layer.shape[1]}x{layer.shape[0]}, the label map "
                             f"{labels.shape[1]}x{labels.shape[0]}; reload the image")
        painted = layer[..., 3] == 255
        if painted.any():
            ids = label_set.from_colors(layer[..., :3][painted][None])[0]
            out[painted] = ids
    return out, int((out != labels).sum())


def apply_mask(labels: np.ndarray, mask: np.ndarray, class_id: int, keep_others: bool) -> np.ndarray:
    """Paint ``class_id`` where ``mask`` (``H x W`` bool) is set.

    ``keep_others``: only background pixels (and those already ``class_id``) change.
    """
    if mask.shape != labels.shape:
        raise ValueError(f"mask {mask.shape} and label map {labels.shape} differ in size")
    target = mask & ((labels == 0) | (labels == class_id)) if keep_others else mask
    out = labels.copy()
    out[target] = class_id
    return out


def _disc(img: np.ndarray, x: int, y: int, r: int, color: Sequence[int]) -> None:
    h, w = img.shape[:2]
    yy, xx = np.ogrid[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)]
    ring = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
    img[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)][ring] = color


def sam_view(base: np.ndarray, clicks: Sequence[tuple[int, int, int]],
             box: tuple[int, int, int, int] | None, corner: tuple[int, int] | None,
             preview: np.ndarray | None, color: Sequence[int]) -> np.ndarray:
    """``base`` (``H x W x 3``) with a SAM preview mask tinted in ``color``, the clicks as
    green (+) / red (−) dots and the box outline. Pixels, ``(x, y)``."""
    img = base.copy()
    if preview is not None and preview.any():
        tint = np.asarray(color, np.float32)
        img[preview] = np.rint(0.45 * img[preview] + 0.55 * tint).astype(np.uint8)
    h, w = img.shape[:2]
    r = max(3, min(h, w) // 90)
    if box is not None:
        x0, y0, x1, y1 = (int(v) for v in box)
        x1, y1 = min(x1, w - 1), min(y1, h - 1)
        img[y0, x0:x1 + 1] = img[y1, x0:x1 + 1] = BOX
        img[y0:y1 + 1, x0] = img[y0:y1 + 1, x1] = BOX
    if corner is not None:
        _disc(img, corner[0], corner[1], r, BOX)
    for x, y, positive in clicks:
        _disc(img, x, y, r + 1, (255, 255, 255))
        _disc(img, x, y, r, POSITIVE if positive else NEGATIVE)
    return img
