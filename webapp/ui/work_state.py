"""The annotator's per-session working copy (kept in ``gr.State``, never in a global).

Label-map pixels are ``H x W`` uint8 at the image's label size; ``photo`` is the image resized
to that size. ``scale`` maps label pixels to original-image pixels ``(sx, sy)`` (SAM works on
the original image).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from db.images import read_image
from db.revisions import require_image
from core.imageio import resize_image
from webapp.studio import Studio
from webapp.work import StartPoint, start_point


@dataclass(frozen=True)
class Work:
    """One image being annotated. Replace, don't mutate (``dataclasses.replace``)."""

    image_id: int
    filename: str
    photo: np.ndarray
    labels: np.ndarray
    start: StartPoint
    base_revision: int | None
    scale: tuple[float, float]
    dirty: bool = False
    discard_warned: bool = False
    clicks: tuple[tuple[int, int, int], ...] = ()
    corner: tuple[int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    preview: np.ndarray | None = None
    preview_score: float | None = None

    @property
    def pristine_model(self) -> bool:
        """Still exactly the model's pre-annotation (nothing painted, nothing saved)."""
        return self.start.source == "model" and not self.dirty and self.base_revision is None

    def with_labels(self, labels: np.ndarray) -> "Work":
        changed = self.dirty or not np.array_equal(labels, self.labels)
        return replace(self, labels=labels, dirty=changed, discard_warned=False)

    def clear_prompts(self) -> "Work":
        return replace(self, clicks=(), corner=None, box=None, preview=None, preview_score=None)


def open_work(studio: Studio, image_id: int) -> Work:
    """Load an image's starting point (newest revision / prediction / empty) into a :class:`Work`.

    Raises :class:`core.errors.FacetError` for an unknown image.
    """
    start = start_point(studio, image_id)
    with studio.session() as session:
        image = require_image(session, image_id)
        name = image.source_name
        size = (image.label_width, image.label_height)
        scale = (image.width / image.label_width, image.height / image.label_height)
        photo = resize_image(read_image(studio.settings, image), size)
    return Work(image_id, name, photo, start.labels.copy(), start, start.base_revision, scale)

