"""Project numbers for ``app.py stats``: images, review states, class pixel shares, models.

Pixel shares are computed over each image's newest main-line label map (numpy/PIL only).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.imageio import decode_label_png
from core.labels import CELEBAMASK, LabelSet
from db.models import Image, ModelVersion, Revision, RevisionState
from db.revisions import ALL_IDS, latest_revisions
from db.versions import active_version


@dataclass(frozen=True)
class Stats:
    """Counts of images; ``class_share[name]`` is that class's fraction of labelled pixels."""

    images: int
    annotated: int          # images with any main-line revision
    submitted: int          # newest revision submitted or approved
    approved: int           # newest revision approved
    rejected: int           # newest revision rejected
    labelled_pixels: int
    class_share: dict[str, float]
    model_versions: int
    active_version_id: int | None
    active_mean_f1: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def _count_latest(session: Session, states: tuple[RevisionState, ...]) -> int:
    newest = latest_revisions().where(Revision.state.in_(states)).subquery()
    return int(session.scalar(select(func.count()).select_from(newest)) or 0)


def class_pixel_counts(session: Session) -> np.ndarray:
    """``ALL_IDS`` (256) int64 pixel counts, index = label id, over each image's newest label map."""
    counts = np.zeros(ALL_IDS, dtype=np.int64)
    query = select(latest_revisions().subquery().c.label_png)
    for png in session.scalars(query.execution_options(yield_per=64)):
        labels = decode_label_png(png, ALL_IDS)
        counts += np.bincount(labels.ravel(), minlength=ALL_IDS)
    return counts


def class_shares(counts: np.ndarray, label_set: LabelSet = CELEBAMASK) -> dict[str, float]:
    """Fraction of labelled pixels per class name: every class of ``label_set``, plus the
    opt-in extras (``hand``, ``mask``) or ``id_N`` for any other id that occurs."""
    total = int(counts.sum())
    extended = LabelSet.celebamask(extras=True).names
    shares: dict[str, float] = {}
    for i, n in enumerate(counts.tolist()):
        if i < label_set.num_classes or n:
            name = (label_set.names[i] if i < label_set.num_classes
                    else extended[i] if i < len(extended) else f"id_{i}")
            shares[name] = n / total if total else 0.0
    return shares


def compute_stats(session: Session, label_set: LabelSet = CELEBAMASK) -> Stats:
    """Gather every number ``stats`` prints."""
    counts = class_pixel_counts(session)
    active = active_version(session)
    mean_f1 = active.metrics.get("mean_f1") if active is not None else None
    return Stats(
        images=int(session.scalar(select(func.count(Image.id))) or 0),
        annotated=_count_latest(session, tuple(RevisionState)),
        submitted=_count_latest(session, (RevisionState.submitted, RevisionState.approved)),
        approved=_count_latest(session, (RevisionState.approved,)),
        rejected=_count_latest(session, (RevisionState.rejected,)),
        labelled_pixels=int(counts.sum()),
        class_share=class_shares(counts, label_set),
        model_versions=int(session.scalar(select(func.count(ModelVersion.id))) or 0),
        active_version_id=active.id if active is not None else None,
        active_mean_f1=float(mean_f1) if mean_f1 is not None else None,
    )


def format_stats(stats: Stats) -> str:
    """A small aligned table for people (``stats --json`` gives the same as one object)."""
    rows: list[tuple[str, str]] = [
        ("images", str(stats.images)), ("annotated", str(stats.annotated)),
        ("submitted", str(stats.submitted)), ("approved", str(stats.approved)),
        ("rejected", str(stats.rejected)), ("model versions", str(stats.model_versions)),
        ("active version", "-" if stats.active_version_id is None else str(stats.active_version_id)),
        ("active mean F1", "-" if stats.active_mean_f1 is None else f"{stats.active_mean_f1:.4f}"),
        ("labelled pixels", str(stats.labelled_pixels)),
    ]
    rows += [(f"  {name}", f"{100 * share:.2f} %") for name, share in stats.class_share.items()]
    width = max(len(k) for k, _ in rows)
    vwidth = max(len(v) for _, v in rows)
    return "\n".join(f"{k:<{width}}  {v:>{vwidth}}" for k, v in rows)
