"""Database sessions and wall time per Annotate event, called the way Gradio calls the handlers.

    python bench/ui_sessions.py [--faces 6] [--size 128]

A fresh data dir in a temporary folder, open mode (no users), demo faces, a tiny random-weight
parser as the active model, no worker (so the first open computes its pre-annotation in the
web process, as ``serve --no-worker`` does). Prints one row per event: sessions opened (every
``Session`` the studio's session factory made during the event, the login lookup included)
and milliseconds. docs/ARCHITECTURE.md quotes the table.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core.labels import CELEBAMASK  # noqa: E402
from db.settings import Settings  # noqa: E402
from model.checkpoint import save_checkpoint  # noqa: E402
from model.net import ParserConfig, build_face_parser  # noqa: E402
from webapp.demo import fill_demo, register_parser  # noqa: E402
from webapp.options import ServeOptions  # noqa: E402
from webapp.studio import Studio  # noqa: E402
from webapp.ui.annotate import AnnotateView  # noqa: E402


class SessionCounter:
    """Counts the sessions the studio's ``sessionmaker`` makes once :meth:`install` ran."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.count = 0

    def install(self) -> None:
        counter = self

        class CountingSession(Session):
            def __init__(self, *args, **kwargs) -> None:
                counter.count += 1
                super().__init__(*args, **kwargs)

        self.studio.sessions.class_ = CountingSession


def tiny_parser(path: Path) -> Path:
    """A random-weight parser at 64 x 64 input (the numbers here are about sessions, not F1)."""
    config = ParserConfig.small(CELEBAMASK, input_size=64, context_channels=16,
                                decoder_channels=16, skip_channels=8, edge_channels=8)
    torch.manual_seed(0)
    save_checkpoint(path, build_face_parser(config), config, CELEBAMASK, {"n_labelled": 0})
    return path


def stroke(shape: tuple[int, int], class_id: int) -> dict:
    """An ImageEditor value with one painted bar of ``class_id``."""
    layer = np.zeros(shape + (4,), np.uint8)
    layer[10:14, 5:40, :3] = CELEBAMASK.palette[class_id]
    layer[10:14, 5:40, 3] = 255
    return {"background": None, "layers": [layer], "composite": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=6)
    parser.add_argument("--size", type=int, default=128, help="demo face side in pixels")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facet-ui-sessions-"))
    try:
        studio = Studio.create(Settings.resolve(data_dir=tmp / "data", env={}), ServeOptions(), None)
        fill_demo(studio, args.faces, size=args.size, labelled_fraction=0.0)
        register_parser(studio, tiny_parser(tmp / "tiny.pt"))
        with gr.Blocks():
            view = AnnotateView(studio)
            view.build()
        request = SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"))
        counter = SessionCounter(studio)
        counter.install()
        print("| event | sessions | ms |\n|---|---|---|")

        def measure(name: str, handler) -> dict:
            counter.count = 0
            start = time.perf_counter()
            out = handler()
            print(f"| {name} | {counter.count} | {1000 * (time.perf_counter() - start):.0f} |")
            return out

        opened = measure("Next image (pre-annotation computed here)",
                         lambda: view.on_next(None, None, (), 0.5, request))[view.work]
        work = measure("Open by id (pre-annotation cached)",
                       lambda: view.on_jump(None, None, str(opened.image_id), 0.5, request))[view.work]
        measure("Opacity slider", lambda: view.on_opacity(work, None, 0.3))
        saved = measure("Save draft", lambda: view.on_save(work, stroke(work.labels.shape, 2), (),
                                                           0.5, request))[view.work]
        measure("Submit (then the next image)",
                lambda: view.on_submit(saved, None, (), 0.5, request))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
