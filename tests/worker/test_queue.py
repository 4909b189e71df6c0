"""worker/queue.py: one Huey instance per settings, SQLite file or Redis by URL."""
from __future__ import annotations

import huey
import pytest

from core.errors import FacetError
from db.settings import Settings
from worker.client import HueyTaskQueue
from worker.context import WorkerContext
from worker.options import WorkerOptions
from worker.queue import bind_tasks, make_huey, sqlite_queue_path
from worker.tasks import TASKS


def test_default_queue_is_a_sqlite_file_in_the_data_dir(settings):
    h = make_huey(settings)
    assert isinstance(h, huey.SqliteHuey)
    assert h.storage.filename == str(settings.data_dir / "queue.db")
    assert h.store_intermediate_errors is False and not h.immediate


def test_redis_url_gives_a_redis_huey_with_priorities_without_connecting():
    s = Settings.resolve(data_dir="/tmp/x", queue_url="redis://localhost:6399/3", env={})
    h = make_huey(s)
    assert isinstance(h, huey.PriorityRedisHuey)
    kw = h.storage.pool.connection_kwargs
    assert (kw["port"], kw["db"]) == (6399, 3)


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite:///:memory:", "sqlite://"])
def test_unusable_queue_urls_are_refused_with_a_reason(url):
    s = Settings.resolve(data_dir="/tmp/x", queue_url=url, env={})
    with pytest.raises(FacetError, match="queue"):
        make_huey(s)


def test_sqlite_queue_path_keeps_absolute_paths():
    assert str(sqlite_queue_path("sqlite:////srv/facet/q.db")) == "/srv/facet/q.db"


def test_a_task_enqueued_by_one_instance_is_visible_to_another_over_the_file(settings):
    """The web process and the consumer share only the queue file: ids travel, not objects."""
    opts = WorkerOptions.from_env(env={})
    web = HueyTaskQueue(settings, opts)
    worker = bind_tasks(make_huey(settings), TASKS, WorkerContext(settings, opts))
    web.enqueue_prediction(7)
    web.enqueue_training(3)
    assert worker.huey.pending_count() == 2
    names = sorted(t.name for t in worker.huey.pending())
    assert names == ["facet.predict", "facet.train"]
    assert sorted(t.args for t in worker.huey.pending()) == [(3,), (7,)]


def test_the_web_side_writes_messages_only_and_a_worker_runs_them(settings):
    """The client declares the tasks (same names, keys and settings as the worker's) without a
    context: it opens no database and runs nothing; a bound instance runs its messages."""
    from core.errors import FacetError
    from db.database import open_database

    opts = WorkerOptions.from_env(env={"FACET_TRAIN_TIMEOUT": "77"})
    web = HueyTaskQueue(settings, opts, sam_checkpoint="/models/sam.pth", sam_model="vit_b")
    web.enqueue_prediction(7)
    web.enqueue_embedding(7)
    web.enqueue_training(3)
    web.enqueue_scoring(2)
    web.label_saved(7)
    pending = {t.name: t for t in web.tasks.huey.pending()}
    assert sorted(pending) == ["facet.check_retrain", "facet.embed", "facet.predict",
                               "facet.score_all", "facet.train"]
    assert pending["facet.embed"].args == (7, "/models/sam.pth", "vit_b")
    assert (pending["facet.predict"].priority, pending["facet.predict"].retries) == (30, 2)
    assert pending["facet.train"].timeout == 77
    assert pending["facet.embed"].priority == 20
    web.enqueue_embedding(8, urgent=True)               # an annotator waits for this one
    first = max(web.tasks.huey.pending(), key=lambda t: t.priority or 0)
    assert (first.name, first.args[0], first.priority) == ("facet.embed", 8, 100)
    with pytest.raises(FacetError, match="runs in a worker"):
        web.tasks.by_name["facet.predict"].call_local(7)
    assert not (settings.data_dir / "facet.db").exists()

    web.tasks.huey.flush()
    web.enqueue_prediction(7)
    sessions = open_database(settings)
    try:
        worker = bind_tasks(make_huey(settings), TASKS,
                            WorkerContext(settings, opts, sessions=sessions))
        task = worker.huey.dequeue()
        assert task.name == "facet.predict"
        assert worker.huey.execute(task) is None  # ran in the worker: no image 7, no model
    finally:
        sessions.kw["bind"].dispose()
