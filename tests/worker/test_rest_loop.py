"""The loop over the studio's REST API with a real consumer process on the SQLite queue.

Images uploaded and labels submitted over HTTP; training started with ``POST /api/train``; the
running server (uvicorn, never restarted) serves the new model's pre-annotations; an older
version is reactivated over the API and served again.
"""
from __future__ import annotations

import socket
import threading

import httpx
import numpy as np
import pytest

from core.imageio import decode_label_png, encode_label_png
from tests.worker.conftest import SIZE, consumer_env, face, png_bytes, publish_untrained, wait_for
from worker.child_process import start_worker_process
from worker.client import HueyTaskQueue
from worker.options import WorkerOptions

pytest.importorskip("webapp.server")
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(settings, sessions):
    """The studio (API + UI) on a free loopback port, with a Huey client as its task queue."""
    import uvicorn

    from webapp.options import ServeOptions
    from webapp.server import build_app
    from webapp.studio import Studio

    env = consumer_env(FACET_TRAIN_STEPS="40", FACET_TRAIN_BATCH="4", FACET_TRAIN_LR="0.01")
    queue = HueyTaskQueue(settings, WorkerOptions.from_env(env=env))
    studio = Studio.create(settings, ServeOptions(no_worker=True), queue)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(build_app(studio), host="127.0.0.1", port=port,
                                       log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, 30, "the server to start")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=60) as client:
        yield client, env
    srv.should_exit = True
    thread.join(10)


def _prediction(client, image_id) -> tuple[str, np.ndarray]:
    r = client.get(f"/images/{image_id}/prediction")
    assert r.status_code == 200, r.text
    return r.headers["X-Model-Version"], decode_label_png(r.content, 19)


def test_labels_over_rest_train_publish_and_the_server_serves_the_new_model(server, settings,
                                                                            sessions):
    client, env = server
    ids = {}
    for seed in range(1, 9):
        r = client.post("/images", files={"file": (f"face{seed}.png", png_bytes(face(seed)[0]),
                                                   "image/png")})
        assert r.status_code == 201, r.text
        ids[seed] = r.json()["id"]
    v0 = publish_untrained(sessions, settings, seed=3)  # what `serve --parser-checkpoint` does
    version, before = _prediction(client, ids[8])
    assert version == str(v0)

    with start_worker_process(settings, env=env) as worker:
        for seed in range(1, 6):
            r = client.put(f"/images/{ids[seed]}/annotation", params={"state": "submitted"},
                           content=encode_label_png(face(seed)[1]))
            assert r.status_code == 200, r.text
        r = client.post("/train")
        assert r.status_code == 202, r.text
        job = r.json()["job"]
        assert client.post("/train").status_code == 409  # one at a time

        def published():
            models = client.get("/models").json()
            return next((m for m in models if m["job_id"] == job), None)

        new = wait_for(published, 180, "a version from the API's training job", worker.log_path)
        models = {m["id"]: m for m in client.get("/models").json()}
        assert models[new["id"]]["active"] and not models[v0]["active"]
        assert new["metrics"]["mean_f1"] >= new["metrics"]["baseline_mean_f1"]
        assert client.get("/health").json()["model_version"] == new["id"]

        version, after = _prediction(client, ids[8])  # same server process, no restart
        assert version == str(new["id"])
        assert not np.array_equal(before, after)
        assert after.shape == (SIZE, SIZE)

        r = client.post(f"/models/{v0}/activate")  # rollback over the API
        assert r.status_code == 200 and r.json() == {"active": v0}
        version, again = _prediction(client, ids[8])
        assert version == str(v0) and np.array_equal(again, before)
        assert {m["id"]: m["active"] for m in client.get("/models").json()} == {
            v0: True, new["id"]: False}
