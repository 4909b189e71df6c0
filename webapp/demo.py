"""Start-up helpers of ``serve``: a demo database of synthetic faces, and registering a parser
checkpoint given on the command line."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import func, select

from core.errors import FacetError
from db.models import Image
from db.versions import list_versions
from webapp.actions import (NoWorkerError, TrainingPendingError, add_active_version, add_image,
                            queue_training)
from webapp.studio import Studio

DEMO_SEED = 2024


def _jpeg(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(image).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def fill_demo(studio: Studio, count: int, size: int = 512, labelled_fraction: float = 0.5) -> int:
    """On a database without images, add ``count`` synthetic faces; returns how many were added.

    The first ``labelled_fraction`` of them come with their exact label maps as approved,
    imported revisions (so "train now" has data at once); the rest wait in the queue.
    A database that already has images is left alone (returns 0).
    """
    from model.synth import face_seed, render_face

    if count < 1:
        raise FacetError(f"--demo needs a positive number of faces, got {count}")
    with studio.session() as session:
        if session.scalar(select(func.count(Image.id))):
            return 0
    labelled = int(count * labelled_fraction)
    for k in range(count):
        image, labels = render_face(face_seed(DEMO_SEED, k), size, labels=studio.labels)
        add_image(studio, None, _jpeg(image), f"demo_{k:04d}.jpg",
                  ground_truth=labels if k < labelled else None,
                  comment="demo: synthetic ground truth")
    return count


def train_first_model(studio: Studio) -> str:
    """Queue a training run on the demo's labels (it fine-tunes the face prior when there is
    one, else trains a first model); returns a one-line report."""
    with studio.session() as session:
        if any(v.num_labels for v in list_versions(session)):
            return "demo: a trained model already exists; no training queued"
    try:
        job_id = queue_training(studio, None, "demo")
    except NoWorkerError:
        return "demo: no worker, so no first model; press 'train now' once a worker runs"
    except TrainingPendingError as err:
        return f"demo: training job {err.job_id} already queued"
    return f"demo: training a first model in the background (job {job_id}); watch the Models tab"


def register_prior(studio: Studio, checkpoint: Path) -> str:
    """Make the face prior the first model version of a database without any (a missing file
    is reported, not an error: the studio then starts without a model)."""
    if not Path(checkpoint).is_file():
        return (f"prior: {checkpoint} not found; starting without a model (the first training "
                "run starts from random weights)")
    return register_parser(studio, checkpoint, "face prior: trained on synthetic faces only, "
                           "scored on held-out synthetic faces", "prior")


def register_parser(studio: Studio, checkpoint: Path, note: str = "from serve --parser-checkpoint",
                    what: str = "parser") -> str:
    """Record ``checkpoint`` as a model version and activate it, when no version exists yet.

    The file is copied under the data dir's ``models/`` when it lives elsewhere (versions store
    paths relative to the data dir). Returns a one-line report. :class:`FacetError` for a file
    that is not a parser checkpoint.
    """
    from model.checkpoint import load_checkpoint

    checkpoint = Path(checkpoint).expanduser().resolve()
    given = checkpoint.name
    with studio.session() as session:
        if list_versions(session):
            return f"{what}: the database already has model versions; {given} not registered"
    ckpt = load_checkpoint(checkpoint)  # validates the file before anything is stored
    if ckpt.labels.names != studio.labels.names:
        raise FacetError(f"{checkpoint} predicts {ckpt.labels.num_classes} classes that differ "
                         "from the studio's label set")
    data_dir = studio.settings.data_dir.resolve()
    if data_dir not in checkpoint.parents:
        target = studio.settings.models_dir / f"cli-{checkpoint.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, target)
        checkpoint = target.resolve()
    meta = ckpt.meta or {}
    metrics = dict(meta.get("metrics") or {})
    for key in ("mean_f1", "per_class_f1"):
        if key in meta and key not in metrics:
            metrics[key] = meta[key]
    version_id = add_active_version(studio, checkpoint.relative_to(data_dir).as_posix(),
                                    ckpt.config.to_dict(), metrics,
                                    int(meta.get("n_labelled") or 0), note)
    return f"{what}: registered {given} as model v{version_id} and activated it"
