"""Database sessions and wall time per Annotate event: the REST calls the browser editor makes.

    python bench/ui_sessions.py [--faces 6] [--size 128]

A fresh data dir in a temporary folder, open mode (no users), demo faces, a tiny random-weight
parser as the active model, no worker (so the first open computes its pre-annotation in the
web process, as ``serve --no-worker`` does). The editor's requests go through the real app
(FastAPI ``TestClient``). Prints one row per event: sessions opened (every ``Session`` the
studio's session factory made during the event, the login lookup included) and milliseconds.
Painting, opacity and visibility make no request at all. docs/ARCHITECTURE.md quotes the table.
"""
from __future__ import annotations

import argparse
import base64
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from core.imageio import decode_label_png, encode_label_png  # noqa: E402
from core.labels import CELEBAMASK  # noqa: E402
from db.settings import Settings  # noqa: E402
from model.checkpoint import save_checkpoint  # noqa: E402
from model.net import ParserConfig, build_face_parser  # noqa: E402
from webapp.demo import fill_demo, register_parser  # noqa: E402
from webapp.options import ServeOptions  # noqa: E402
from webapp.studio import Studio  # noqa: E402
from webapp.server import build_app  # noqa: E402


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


def stroke(opened: dict, class_id: int) -> bytes:
    """The opened image's start map with one painted bar of ``class_id``, as the editor's PNG."""
    labels = decode_label_png(base64.b64decode(opened["labels_png"]), CELEBAMASK.num_classes)
    labels[10:14, 5:40] = class_id
    return encode_label_png(labels)


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
        client = TestClient(build_app(studio), base_url="http://127.0.0.1",
                            client=("127.0.0.1", 50000))  # open mode: loopback only
        counter = SessionCounter(studio)
        counter.install()
        print("| event | sessions | ms |\n|---|---|---|")

        def measure(name: str, call):
            counter.count = 0
            start = time.perf_counter()
            response = call()
            response.raise_for_status()
            print(f"| {name} | {counter.count} | {1000 * (time.perf_counter() - start):.0f} |")
            return response.json()

        opened = measure("Next image (pre-annotation computed here)",
                         lambda: client.post("/api/queue/next", json={}))["image"]
        image = opened["id"]
        measure("Open by id (pre-annotation cached)", lambda: client.get(f"/api/images/{image}/open"))
        saved = measure("Save draft", lambda: client.put(
            f"/api/images/{image}/annotation", content=stroke(opened, 2),
            headers={"Content-Type": "image/png"}))
        measure("History after the save", lambda: client.get(f"/api/images/{image}/revisions"))
        measure("Submit", lambda: client.put(
            f"/api/images/{image}/annotation?state=submitted", content=stroke(opened, 2),
            headers={"Content-Type": "image/png", "If-Match": f'"{saved["revision"]}"'}))
        measure("Then the next image", lambda: client.post("/api/queue/next", json={"skipped": []}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
