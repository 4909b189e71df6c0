"""The README's scale-out deployment, run for real: PostgreSQL + Redis, ``serve --no-worker``, one
``worker --queues light`` and one ``worker --queues train``, all separate processes sharing one
data dir — the same loop the SQLite tests check.

Annotators' labels arrive over REST (HTTP Basic, accounts made with ``users add``); a training
run asked for while only the light worker runs stays queued (and says so in ``/api/jobs``) until
the train worker starts; then a new model is active and the light worker pre-annotates with it.
"""
from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import pytest

from core.imageio import encode_label_png
from db.cache import get_prediction
from db.database import open_database
from db.engine import session_scope
from db.settings import Settings
from tests.app_cli import REPO, cli_env, run_app
from tests.webapp.helpers import write_tiny_parser
from tests.webapp.live import free_port
from tests.worker.conftest import consumer_env, face, png_bytes, wait_for
from worker.child_process import start_worker_process

pytestmark = pytest.mark.slow
LEAD = ("lead", "lead-pass-1")
ANNOTATORS = [("ann1", "ann1-pass-1"), ("ann2", "ann2-pass-1")]


@pytest.fixture
def team_settings(tmp_path, postgres_server, redis_url) -> Settings:
    """A data dir with its database on PostgreSQL and its queue on Redis."""
    name = f"deploy_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield Settings.resolve(data_dir=tmp_path / "shared", database_url=url,
                               queue_url=redis_url, env={})
    finally:
        postgres_server.drop_database(name)


def _serve(settings: Settings, parser, port: int, env: dict[str, str]) -> subprocess.Popen:
    """``facet serve --no-worker`` on ``port``, as the web machine runs it."""
    log = (settings.data_dir / "serve.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "app.py", "serve", "--no-worker", "--no-prior", "--port", str(port),
         "--parser-checkpoint", str(parser)],
        cwd=REPO, env={**cli_env(settings), **env}, stdout=log, stderr=subprocess.STDOUT)


def _state(api: httpx.Client, job_id: int) -> str:
    r = api.get(f"/jobs/{job_id}")
    assert r.status_code == 200, r.text
    return r.json()["state"]


def _predicted_by(sessions, image_id: int, version_id: int) -> bool:
    with session_scope(sessions) as s:
        return get_prediction(s, image_id, version_id) is not None


def test_serve_and_routed_workers_on_postgresql_and_redis_run_the_loop(team_settings, tmp_path):
    settings = team_settings
    settings.data_dir.mkdir(parents=True)
    for name, password in [LEAD, *ANNOTATORS]:
        role = "admin" if name == LEAD[0] else "annotator"
        made = run_app("users", "add", name, "--role", role, settings=settings,
                       stdin=password + "\n")
        assert made.returncode == 0, made.stderr
    env = consumer_env(FACET_TRAIN_STEPS="40", FACET_TRAIN_BATCH="4", FACET_TRAIN_LR="0.01")
    port = free_port()
    web = _serve(settings, write_tiny_parser(tmp_path / "tiny.pt"), port, env)
    sessions = open_database(settings)
    base = f"http://127.0.0.1:{port}/api"
    try:
        with httpx.Client(base_url=base, timeout=60, auth=LEAD) as lead:
            def healthy():
                try:
                    return lead.get("/health").status_code == 200
                except httpx.TransportError:
                    assert web.poll() is None, (settings.data_dir / "serve.log").read_text()
                    return False
            wait_for(healthy, 120, "serve --no-worker to answer", settings.data_dir / "serve.log")
            v1 = lead.get("/health").json()["model_version"]
            assert v1 is not None

            ids = {}
            for seed in range(1, 9):
                r = lead.post("/images", files={"file": (f"face{seed}.png",
                                                         png_bytes(face(seed)[0]), "image/png")})
                assert r.status_code == 201, r.text
                ids[seed] = r.json()["id"]
            for i, seed in enumerate(range(1, 6)):
                with httpx.Client(base_url=base, timeout=60,
                                  auth=ANNOTATORS[i % len(ANNOTATORS)]) as annotator:
                    r = annotator.put(f"/images/{ids[seed]}/annotation",
                                      params={"state": "submitted"},
                                      content=encode_label_png(face(seed)[1]))
                    assert r.status_code == 200, r.text

            with start_worker_process(settings, env=env, queues="light") as light:
                # uploads were queued for pre-annotation; only the light worker does that
                wait_for(lambda: _predicted_by(sessions, ids[8], v1), 180,
                         "the light worker's pre-annotation", light.log_path)
                r = lead.post("/train")
                assert r.status_code == 202, r.text
                job = r.json()["job"]
                for _ in range(3):  # with no train worker the run waits, visibly
                    assert _state(lead, job) == "queued"
                    time.sleep(1)
                assert lead.get("/jobs", params={"state": "queued"}).json()["total"] == 1

                with start_worker_process(settings, env=env, queues="train",
                                          log_path=settings.data_dir / "train.log") as train:
                    wait_for(lambda: _state(lead, job) in ("succeeded", "failed"), 240,
                             "the train worker to finish the run", train.log_path)
                    detail = lead.get(f"/jobs/{job}").json()
                    assert detail["state"] == "succeeded", detail
                    v2 = lead.get("/health").json()["model_version"]
                    assert v2 != v1 and detail["model_version"] == v2
                    models = {m["id"]: m for m in lead.get("/models").json()}
                    assert models[v2]["active"] and models[v2]["job_id"] == job
                    # the new model's pre-annotations, made by the light worker
                    wait_for(lambda: _predicted_by(sessions, ids[8], v2), 180,
                             "pre-annotations from the new model", light.log_path)
                    r = lead.get(f"/images/{ids[8]}/prediction")
                    assert r.status_code == 200 and r.headers["X-Model-Version"] == str(v2)
                assert train.popen.returncode == 0
            assert light.popen.returncode == 0
    finally:
        web.terminate()
        web.wait(30)
        sessions.kw["bind"].dispose()
