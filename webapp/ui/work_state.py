"""The annotator's per-session working copy (kept in ``gr.State``, never in a global).

Label-map pixels are ``H x W`` uint8 at the image's label size; ``photo`` is the image resized
to that size. ``scale`` maps label pixels to original-image pixels ``(sx, sy)`` (SAM works on
the original image).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from webapp.records import OpenedImage, RevisionInfo, StartPoint, VersionInfo


@dataclass(frozen=True)
class Work:
    """One image being annotated. Replace, don't mutate (``dataclasses.replace``).

    ``history`` and ``active`` are what the database said when the image was opened or last
    saved, so redrawing (opacity, SAM preview) never queries it.
    """

    image_id: int
    filename: str
    photo: np.ndarray
    labels: np.ndarray
    start: StartPoint
    base_revision: int | None
    scale: tuple[float, float]
    history: tuple[RevisionInfo, ...] = ()
    active: VersionInfo | None = None
    dirty: bool = False
    discard_warned: bool = False
    clicks: tuple[tuple[int, int, int], ...] = ()
    corner: tuple[int, int] | None = None
    box: tuple[int, int, int, int] | None = None
    preview: np.ndarray | None = None
    preview_score: float | None = None

    @classmethod
    def of(cls, opened: OpenedImage) -> "Work":
        """A fresh working copy of an opened image (its start point, nothing painted)."""
        start = opened.start
        return cls(opened.image_id, opened.filename, opened.photo, start.labels.copy(), start,
                   start.base_revision, opened.scale, opened.history, opened.active)

    @property
    def pristine_model(self) -> bool:
        """Still exactly the model's pre-annotation (nothing painted, nothing saved)."""
        return self.start.source == "model" and not self.dirty and self.base_revision is None

    def with_labels(self, labels: np.ndarray) -> "Work":
        changed = self.dirty or not np.array_equal(labels, self.labels)
        return replace(self, labels=labels, dirty=changed, discard_warned=False)

    def clear_prompts(self) -> "Work":
        return replace(self, clicks=(), corner=None, box=None, preview=None, preview_score=None)
