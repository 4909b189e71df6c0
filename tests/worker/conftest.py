"""Fixtures for the worker: a migrated SQLite database in a temp data dir, tiny images and labels,
tiny checkpoints, and Huey in immediate mode."""
from __future__ import annotations

import io
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from core.imageio import encode_label_png
from db.engine import session_scope
from db.images import add_image
from db.models import RevisionState
from db.revisions import latest_revision, save_revision
from db.settings import Settings
from tests.webapp.live import free_port
from worker.context import WorkerContext
from worker.options import WorkerOptions
from worker.queue import Tasks, bind_tasks, make_hueys
from worker.tasks import TASKS

SIZE = 64
"""Side of test images and labels, pixels."""


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)
    yield




DEVICE = os.environ.get("FACET_TEST_DEVICE", "cpu")
"""Where test training runs (``FACET_TEST_DEVICE=cuda`` on a GPU machine checks that path)."""


@pytest.fixture
def options() -> WorkerOptions:
    """Tiny runs: 64-px fresh models, a handful of steps, one torch thread."""
    return WorkerOptions.from_env(env={}, train_steps=4, batch_size=2, train_size=SIZE,
                                  torch_threads=1, max_unlabeled=4, device=DEVICE,
                                  progress_interval_s=0.0, retrain_every=3)


def immediate_tasks(settings: Settings, sessions, options: WorkerOptions,
                    sam_builders=None) -> Tasks:
    """The tasks bound to a context over ``sessions`` on an immediate-mode Huey: each
    enqueue runs in this thread."""
    context = WorkerContext(settings, options, sessions=sessions, sam_builders=sam_builders)
    return bind_tasks(make_hueys(settings, immediate=True), TASKS, context)


@pytest.fixture
def tasks(settings: Settings, sessions, options) -> Tasks:
    """Tasks on an immediate-mode Huey: each enqueue runs in this thread."""
    return immediate_tasks(settings, sessions, options)


def face(seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """A crude synthetic face: ``(size x size x 3 uint8 image, size x size uint8 label)``.

    Background 0, an elliptic skin region (1) with two eyes (4, 5), a nose (2), lips (11/12)
    and hair (13) on top; colours and positions jitter with ``seed``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cx, cy = 0.5 + rng.uniform(-0.06, 0.06), 0.55 + rng.uniform(-0.05, 0.05)
    label = np.zeros((size, size), np.uint8)
    label[((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.38) ** 2 < 1] = 1
    label[(yy < cy - 0.2) & (((xx - cx) / 0.36) ** 2 + ((yy - cy + 0.05) / 0.45) ** 2 < 1)] = 13
    for ex, cls in ((-0.11, 4), (0.11, 5)):
        label[((xx - cx - ex) / 0.06) ** 2 + ((yy - cy + 0.05) / 0.03) ** 2 < 1] = cls
    label[(abs(xx - cx) < 0.03) & (yy > cy) & (yy < cy + 0.1)] = 2
    label[(abs(xx - cx) < 0.1) & (yy > cy + 0.15) & (yy < cy + 0.18)] = 11
    label[(abs(xx - cx) < 0.1) & (yy >= cy + 0.18) & (yy < cy + 0.21)] = 12
    palette = rng.integers(0, 256, (19, 3))
    palette[0] = rng.integers(0, 60, 3)
    palette[1] = (200, 150, 110) + rng.integers(-20, 20, 3)
    palette[13] = rng.integers(20, 90, 3)
    image = palette[label] + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def add_face(session: Session, settings: Settings, seed: int, *, split: str = "train",
             state: RevisionState | None = None, label: np.ndarray | None = None) -> int:
    """Add a synthetic face image; with ``state``, also save its label as that revision state."""
    image, truth = face(seed)
    row = add_image(session, settings, png_bytes(image), f"face{seed}.png", split=split).image
    if state is not None:
        save_label(session, row.id, truth if label is None else label, state)
    return row.id


def save_label(session: Session, image_id: int, label: np.ndarray,
               state: RevisionState = RevisionState.submitted) -> int:
    """Append a label revision on top of the image's newest one; returns the revision row id."""
    base = latest_revision(session, image_id)
    result = save_revision(session, image_id, encode_label_png(label), None,
                           None if base is None else base.revision, state=state)
    assert not result.conflict
    return result.revision.id


def add_faces(sessions, settings: Settings, labelled: dict[int, str], unlabelled: list[int],
              state: RevisionState = RevisionState.submitted) -> dict[int, int]:
    """``labelled``: seed → split. Returns seed → image id."""
    ids = {}
    with session_scope(sessions) as session:
        for seed, split in labelled.items():
            ids[seed] = add_face(session, settings, seed, split=split, state=state)
        for seed in unlabelled:
            ids[seed] = add_face(session, settings, seed)
    return ids


def tiny_config():
    from model.net import ParserConfig
    return ParserConfig.small(input_size=SIZE, context_channels=16, decoder_channels=16,
                              skip_channels=8, edge_channels=8)


def publish_untrained(sessions, settings: Settings, name: str = "v0.pt", seed: int = 0,
                      active: bool = True) -> int:
    """Save a randomly initialised tiny parser as a version (active by default); its id."""
    from core.labels import CELEBAMASK
    from db.versions import activate, add_version
    from model.checkpoint import save_checkpoint
    from model.net import build_face_parser as build_parser

    torch.manual_seed(seed)
    config = tiny_config()
    path = settings.models_dir / name
    save_checkpoint(path, build_parser(config), config, CELEBAMASK, {"seed": seed})
    with session_scope(sessions) as session:
        version = add_version(session, path.relative_to(settings.data_dir).as_posix(),
                              config.to_dict(), {"mean_f1": 0.0})
        if active:
            activate(session, version.id)
        return version.id


def wait_for(predicate, timeout_s: float, what: str, log_path: Path | None = None,
             interval_s: float = 0.25):
    """Poll ``predicate()`` until it returns something truthy; fail naming ``what`` (and the
    worker's log tail) after ``timeout_s`` seconds."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    tail = ""
    if log_path is not None and Path(log_path).is_file():
        tail = "\n--- worker log ---\n" + "\n".join(
            Path(log_path).read_text(errors="replace").splitlines()[-40:])
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{tail}")


def consumer_env(**overrides: str) -> dict[str, str]:
    """Environment for a test consumer: tiny fresh models, few steps, one thread per process."""
    env = {"FACET_TRAIN_STEPS": "6", "FACET_TRAIN_BATCH": "2", "FACET_TRAIN_SIZE": str(SIZE),
           "FACET_TORCH_THREADS": "1", "FACET_DISTILL_MAX_UNLABELED": "4", "FACET_DEVICE": DEVICE,
           "FACET_RETRAIN_EVERY": "0", "FACET_WORKERS": "2", "OMP_NUM_THREADS": "1"}
    env.update(overrides)
    return env


@pytest.fixture
def redis_url(tmp_path):
    """A private ``redis-server`` on a free port for one test (skipped without the binary)."""
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary (apt-get install redis-server)")
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return True
            except OSError:
                return False
        wait_for(up, 10, "redis-server to listen")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
