"""Test helpers for the studio: real image bytes, users, a tiny parser, a synchronous task queue."""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from core.labels import CELEBAMASK
from db.settings import Settings
from db.users import create_user
from db.versions import activate, add_version
from webapp.options import ServeOptions
from webapp.server import build_app
from webapp.studio import Studio

PASSWORDS = {"ann": "ann-pass-1", "rev": "rev-pass-1", "adm": "adm-pass-1"}
ROLES = {"ann": "annotator", "rev": "reviewer", "adm": "admin"}


def face_bytes(seed: int, size: int = 64, fmt: str = "PNG") -> bytes:
    """A synthetic face photo encoded as ``fmt``."""
    from model.synth import render_face

    image, _ = render_face(seed, size)
    buf = io.BytesIO()
    PILImage.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


def png_of(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def add_users(studio: Studio, names=("ann", "rev", "adm")) -> None:
    with studio.session() as session:
        for name in names:
            create_user(session, name, PASSWORDS[name], ROLES[name])


def auth(name: str) -> tuple[str, str]:
    return name, PASSWORDS[name]


def basic_client(app, name: str | None = "ann"):
    """A ``TestClient`` acting as ``name`` over HTTP Basic (``None``: no credentials)."""
    from fastapi.testclient import TestClient

    c = TestClient(app)
    if name is not None:
        c.auth = auth(name)
    return c


def write_tiny_parser(path: Path) -> Path:
    """A random-weight parser checkpoint at 64 x 64 input (through the parser's own API)."""
    from model.checkpoint import save_checkpoint
    from model.net import ParserConfig
    from model.net import build_face_parser as build_parser

    config = ParserConfig.small(CELEBAMASK, input_size=64, context_channels=16,
                                decoder_channels=16, skip_channels=8, edge_channels=8)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_parser(config)
    save_checkpoint(path, model, config, CELEBAMASK, {"n_labelled": 0})
    return path


def publish_version(studio: Studio, checkpoint: Path, name: str, metrics: dict | None = None,
                    make_active: bool = True) -> int:
    """Copy ``checkpoint`` into the data dir and record it as a model version."""
    target = studio.settings.models_dir / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint, target)
    with studio.session() as session:
        version = add_version(session, target.relative_to(studio.settings.data_dir).as_posix(),
                              {}, metrics or {}, num_labels=3)
        if make_active:
            activate(session, version.id)
        return version.id


@dataclass
class SyncTasks:
    """A :class:`webapp.ports.TaskQueue` that does the work at once, in the caller's thread.

    Embeddings and predictions run through the studio's own services once ``studio`` is set;
    every call is recorded in ``calls`` as ``(method, id)``.
    """

    studio: Studio | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)

    def enqueue_prediction(self, image_id: int) -> None:
        self.calls.append(("prediction", image_id))
        if self.studio is not None:
            self.studio.predictions.prediction(image_id)

    def enqueue_embedding(self, image_id: int, urgent: bool = False, ahead: bool = False) -> None:
        kind = "urgent embedding" if urgent else "ahead embedding" if ahead else "embedding"
        self.calls.append((kind, image_id))
        if self.studio is not None and self.studio.sam is not None:
            self.studio.sam.embedding(image_id)

    def enqueue_training(self, job_id: int) -> None:
        self.calls.append(("training", job_id))

    def enqueue_scoring(self, version_id: int) -> None:
        self.calls.append(("scoring", version_id))

    def label_saved(self, image_id: int) -> None:
        self.calls.append(("label_saved", image_id))


def make_studio(settings: Settings, options: ServeOptions | None = None,
                tasks: SyncTasks | None = None, users: bool = True) -> Studio:
    """A studio over ``settings`` (the ``settings`` fixture: SQLite or PostgreSQL), with the
    users ann, rev and adm unless ``users`` is false."""
    studio = Studio.create(settings, options or ServeOptions(), tasks)
    if tasks is not None:
        tasks.studio = studio
    if users:
        add_users(studio)
    return studio


def app_for(studio: Studio):
    return build_app(studio)
