"""The Redis queue (``FACET_QUEUE_URL=redis://…``) with a real consumer process.

Runs only where a ``redis-server`` binary exists (``apt-get install redis-server``); it starts a
private server on a free port and stops it afterwards.
"""
from __future__ import annotations

import shutil

import pytest

from db.engine import session_scope
from db.settings import Settings
from tests.worker.conftest import add_faces, consumer_env, publish_untrained, wait_for
from worker.child_process import start_worker_process
from worker.client import HueyTaskQueue
from worker.options import WorkerOptions

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="no redis-server binary")]


def test_a_consumer_on_redis_pre_annotates_an_image(tmp_path, redis_url):
    from db.cache import get_prediction
    from db.database import open_database

    settings = Settings.resolve(data_dir=tmp_path / "data", queue_url=redis_url, env={})
    sessions = open_database(settings)
    try:
        ids = add_faces(sessions, settings, {}, [1])
        version = publish_untrained(sessions, settings)
        client = HueyTaskQueue(settings, WorkerOptions.from_env(env=consumer_env()))
        with start_worker_process(settings, env=consumer_env()) as worker:
            client.enqueue_prediction(ids[1])

            def predicted():
                with session_scope(sessions) as s:
                    return get_prediction(s, ids[1], version) is not None
            wait_for(predicted, 60, "a pre-annotation through the Redis queue", worker.log_path)
        assert not (settings.data_dir / "queue.db").exists()
    finally:
        sessions.kw["bind"].dispose()
