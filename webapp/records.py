"""What the studio's use cases (:mod:`webapp.actions`) hand to the API and the UI: plain frozen
records, built inside the use case's one database session, so no caller touches ORM rows after
the session is closed. Label maps are ``H x W`` uint8 class ids at the image's label size."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from db.models import ModelVersion, Revision


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
class RevisionInfo:
    """One row of an image's history. ``number`` is None for a draft kept after a conflict."""

    id: int
    number: int | None
    state: str
    origin: str
    author: str
    created_at: datetime
    comment: str | None
    model_version_id: int | None

    @classmethod
    def of(cls, rev: Revision) -> "RevisionInfo":
        return cls(rev.id, rev.revision, rev.state.value, rev.origin.value,
                   rev.author.name if rev.author is not None else "local",
                   rev.created_at, rev.comment, rev.model_version_id)


@dataclass(frozen=True)
class StartPoint:
    """What an annotator starts from: the newest revision, else the active model's prediction,
    else an empty map (``source`` says which; ``base_revision`` is what a save must carry)."""

    image_id: int
    labels: np.ndarray
    base_revision: int | None
    source: str                 # "revision" | "model" | "empty"
    revision: RevisionInfo | None
    version: VersionInfo | None


@dataclass(frozen=True)
class OpenedImage:
    """Everything the Annotate view shows for one image, read in one session.

    ``size``: the original image's ``(width, height)`` in pixels. ``scale``: label pixels →
    original-image pixels ``(sx, sy)`` (SAM works on the original). ``history``: every revision, oldest
    first. ``active``: the active model now. ``sam_ready``: whether the SAM embedding is
    cached (``None`` without SAM). ``held_until``: naive UTC end of another annotator's lease
    on the image, ``None`` when nobody else holds it.
    """

    image_id: int
    filename: str
    size: tuple[int, int]
    scale: tuple[float, float]
    start: StartPoint
    history: tuple[RevisionInfo, ...]
    active: VersionInfo | None
    sam_ready: bool | None
    held_until: datetime | None = None


@dataclass(frozen=True)
class SaveOutcome:
    """``number``: the new main-line revision, or None when the save lost a conflict (then the
    work was kept as a draft row ``row_id`` and ``current`` is the revision that won).
    ``history``: the image's revisions after the save, oldest first (when asked for)."""

    row_id: int
    number: int | None
    conflict: bool
    current: int | None
    history: tuple[RevisionInfo, ...] = ()


@dataclass(frozen=True)
class Decision:
    """A submit, approve or reject: the revision it appended and its state."""

    image_id: int
    revision: int
    state: str


@dataclass(frozen=True)
class AddedImage:
    """An upload: the image row's id and size; ``created`` False for a duplicate."""

    id: int
    filename: str
    width: int
    height: int
    created: bool
