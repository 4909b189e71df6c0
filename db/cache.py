"""Cached per-image results: model pre-annotations and SAM embedding files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.imageio import decode_label_png, encode_label_png, resize_image, resize_labels
from core.labels import CELEBAMASK
from db.images import read_image
from db.models import Image, ModelVersion, Prediction, SamEmbedding, utcnow
from db.revisions import require_image
from db.settings import Settings
from db.versions import active_version


def get_prediction(session: Session, image_id: int, version_id: int) -> Prediction | None:
    """The cached pre-annotation of an image by a model version, if any."""
    return session.scalar(select(Prediction).where(Prediction.image_id == image_id,
                                                   Prediction.model_version_id == version_id))


def put_prediction(session: Session, image_id: int, version_id: int, label_png: bytes,
                   uncertainty: float | None = None,
                   num_classes: int = CELEBAMASK.num_classes) -> Prediction:
    """Store (or replace) a pre-annotation: a label-map PNG of the image's label size.

    ``uncertainty`` is the model's score for the image (higher = less sure).
    """
    image = require_image(session, image_id)
    decode_label_png(label_png, num_classes, (image.label_width, image.label_height))
    row = get_prediction(session, image_id, version_id)
    if row is None:
        row = Prediction(image_id=image_id, model_version_id=version_id)
        session.add(row)
    row.label_png, row.uncertainty, row.created_at = label_png, uncertainty, utcnow()
    session.flush()
    return row


def get_embedding_row(session: Session, image_id: int, sam_model: str) -> SamEmbedding | None:
    """The cached SAM embedding record of an image for ``sam_model`` (e.g. ``vit_b:<sha12>``)."""
    return session.scalar(select(SamEmbedding).where(SamEmbedding.image_id == image_id,
                                                     SamEmbedding.sam_model == sam_model))


def put_embedding_row(session: Session, image_id: int, sam_model: str, path: str) -> SamEmbedding:
    """Record (or re-point) where an embedding file lives, relative to the data dir."""
    require_image(session, image_id)
    row = get_embedding_row(session, image_id, sam_model)
    if row is None:
        row = SamEmbedding(image_id=image_id, sam_model=sam_model)
        session.add(row)
    row.path, row.created_at = str(path), utcnow()
    session.flush()
    return row


def embedding_path(settings: Settings, model_key: str, image_id: int) -> Path:
    """Where the SAM embedding of ``image_id`` by the model ``model_key`` lives:
    ``<cache dir>/sam/<type>-<sha12>/<image id>.npz`` (the worker writes it, the studio reads it)."""
    return settings.cache_dir / "sam" / model_key.replace(":", "-") / f"{image_id}.npz"


def store_prediction(session: Session, settings: Settings, predictor, image: Image,
                     version: ModelVersion, *, is_active: bool | None = None) -> np.ndarray:
    """Pre-annotate ``image`` with ``predictor`` (a ``model.inference.Predictor`` of ``version``)
    and store it; returns the ``label_height x label_width`` uint8 label map. The web process
    and the worker both call this.

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
    return label


def has_embedding(session: Session, settings: Settings, image_id: int, model_key: str) -> bool:
    """True when a row for (image, SAM model) exists and its file is on disk."""
    row = get_embedding_row(session, image_id, model_key)
    return row is not None and (settings.data_dir / row.path).is_file()


def store_embedding(session: Session, settings: Settings, sam, image: Image) -> Path:
    """Compute the SAM embedding of ``image`` with ``sam`` (a ``model.sam.SamModel``: ``key``
    and ``compute_embedding(H x W x 3 uint8) -> SamEmbedding`` with ``save(path)``), write its
    file and record it; returns the file path. The web process and the worker both call this.

    The file is complete before its row exists, so a reader never finds a row without its
    file. Flushes; the caller commits.
    """
    path = embedding_path(settings, sam.key, image.id)
    sam.compute_embedding(read_image(settings, image)).save(path)
    put_embedding_row(session, image.id, sam.key, path.relative_to(settings.data_dir).as_posix())
    return path
