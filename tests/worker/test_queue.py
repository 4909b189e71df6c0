"""worker/queue.py: one Huey instance per route (train, light) over one SQLite file or Redis."""
from __future__ import annotations

import huey
import pytest

from core.errors import FacetError
from db.settings import Settings
from worker.client import HueyTaskQueue
from worker.context import WorkerContext
from worker.options import WorkerOptions
from worker.queue import (LIGHT, ROUTES, TRAIN, bind_tasks, declare_tasks, make_huey,
                          make_hueys, parse_routes, sqlite_queue_path)
from worker.tasks import TASKS


def test_default_queue_is_a_sqlite_file_in_the_data_dir(settings):
    hueys = make_hueys(settings)
    assert sorted(hueys) == sorted(ROUTES) == ["light", "train"]
    for route, h in hueys.items():
        assert isinstance(h, huey.SqliteHuey) and h.name == f"facet-{route}"
        assert h.storage.filename == str(settings.data_dir / "queue.db")  # one file
        assert h.store_intermediate_errors is False and not h.immediate


def test_redis_url_gives_a_redis_huey_with_priorities_without_connecting():
    s = Settings.resolve(data_dir="/tmp/x", queue_url="redis://localhost:6399/3", env={})
    h = make_huey(s, TRAIN)
    assert isinstance(h, huey.PriorityRedisHuey) and h.name == "facet-train"
    kw = h.storage.pool.connection_kwargs
    assert (kw["port"], kw["db"]) == (6399, 3)


@pytest.mark.parametrize("url", ["postgres://x/y", "sqlite:///:memory:", "sqlite://"])
def test_unusable_queue_urls_are_refused_with_a_reason(url):
    s = Settings.resolve(data_dir="/tmp/x", queue_url=url, env={})
    with pytest.raises(FacetError, match="queue"):
        make_huey(s, LIGHT)


def test_sqlite_queue_path_keeps_absolute_paths():
    assert str(sqlite_queue_path("sqlite:////srv/facet/q.db")) == "/srv/facet/q.db"


def test_a_task_enqueued_by_one_instance_is_visible_to_another_over_the_file(settings):
    """The web process and the consumer share only the queue file: ids travel, not objects."""
    opts = WorkerOptions.from_env(env={})
    web = HueyTaskQueue(settings, opts)
    worker = bind_tasks(make_hueys(settings), TASKS, WorkerContext(settings, opts))
    web.enqueue_prediction(7)
    web.enqueue_training(3)
    light, train = worker.huey_for(LIGHT), worker.huey_for(TRAIN)
    assert [(t.name, t.args) for t in light.pending()] == [("facet.predict", (7,))]
    assert [(t.name, t.args) for t in train.pending()] == [("facet.train", (3,))]


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
    pending = {t.name: t for route in ROUTES for t in web.tasks.huey_for(route).pending()}
    assert sorted(pending) == ["facet.check_retrain", "facet.embed", "facet.predict",
                               "facet.score_all", "facet.train"]
    assert pending["facet.embed"].args == (7, "/models/sam.pth", "vit_b")
    assert (pending["facet.predict"].priority, pending["facet.predict"].retries) == (30, 2)
    assert pending["facet.train"].timeout == 77
    assert pending["facet.embed"].priority == 20
    web.enqueue_embedding(8, urgent=True)               # an annotator waits for this one
    first = max(web.tasks.huey_for(LIGHT).pending(), key=lambda t: t.priority or 0)
    assert (first.name, first.args[0], first.priority) == ("facet.embed", 8, 100)
    web.enqueue_embedding(9, ahead=True)                # next in an annotator's queue
    embeds = sorted((t for t in web.tasks.huey_for(LIGHT).pending() if t.name == "facet.embed"),
                    key=lambda t: -(t.priority or 0))
    assert [(t.args[0], t.priority) for t in embeds] == [(8, 100), (9, 60), (7, 20)]
    with pytest.raises(FacetError, match="runs in a worker"):
        web.tasks.by_name["facet.predict"].call_local(7)
    assert not (settings.data_dir / "facet.db").exists()

    for route in ROUTES:
        web.tasks.huey_for(route).flush()
    web.enqueue_prediction(7)
    sessions = open_database(settings)
    try:
        worker = bind_tasks(make_hueys(settings), TASKS,
                            WorkerContext(settings, opts, sessions=sessions))
        task = worker.huey_for(LIGHT).dequeue()
        assert task.name == "facet.predict"
        # ran in the worker: no image 7, no model
        assert worker.huey_for(LIGHT).execute(task) is None
    finally:
        sessions.kw["bind"].dispose()


def test_each_message_lands_on_the_queue_of_its_route(settings):
    """Training alone goes to facet-train; the rest to facet-light; one queue file."""
    opts = WorkerOptions.from_env(env={})
    web = HueyTaskQueue(settings, opts, sam_checkpoint="/models/sam.pth")
    web.enqueue_training(3)
    web.enqueue_prediction(7)
    web.enqueue_embedding(7, urgent=True)
    web.enqueue_scoring(2)
    web.label_saved(7)
    web.enqueue_training(4)
    hueys = declare_tasks(make_hueys(settings), TASKS, opts).hueys  # another process's view
    assert sorted((t.name, t.args) for t in hueys[TRAIN].pending()) == [
        ("facet.train", (3,)), ("facet.train", (4,))]
    assert sorted(t.name for t in hueys[LIGHT].pending()) == [
        "facet.check_retrain", "facet.embed", "facet.predict", "facet.score_all"]
    # a consumer of one instance dequeues only its own messages
    assert hueys[LIGHT].dequeue().name == "facet.embed"  # urgent: priority 100
    assert hueys[TRAIN].pending_count() == 2


def test_every_task_has_a_route_and_each_periodic_task_runs_on_one_kind_of_worker():
    assert {name: spec.route for name, spec in TASKS.items() if spec.route == TRAIN} == {
        "facet.train": TRAIN, "facet.reap_runs": TRAIN}
    assert all(spec.route in ROUTES for spec in TASKS.values())
    periodic = {name: spec.route for name, spec in TASKS.items() if spec.periodic is not None}
    assert periodic == {"facet.every_minute": LIGHT, "facet.reap_runs": TRAIN,
                        "facet.redo_lost": LIGHT}


def test_locks_live_on_the_instance_of_their_route(settings):
    """The training lock is the train instance's: a light consumer's flush cannot free it."""
    from worker.tasks import TRAIN_LOCK

    hueys = make_hueys(settings)
    lock = hueys[TRAIN].lock_task(TRAIN_LOCK)
    lock.acquire()
    try:
        assert make_huey(settings, TRAIN).is_locked(TRAIN_LOCK)
        assert not make_huey(settings, LIGHT).is_locked(TRAIN_LOCK)
    finally:
        lock.release()


@pytest.mark.parametrize(("raw", "routes"), [
    (None, ("train", "light")), ("", ("train", "light")), ("train", ("train",)),
    ("light", ("light",)), (" light , train ", ("train", "light")), ("light,light", ("light",))])
def test_queues_option_parses_to_routes(raw, routes):
    assert parse_routes(raw) == routes


@pytest.mark.parametrize("raw", ["gpu", "train,gpu", "train,", ","])
def test_an_unknown_queue_is_one_clear_line(raw):
    with pytest.raises(FacetError) as err:
        parse_routes(raw)
    message = str(err.value)
    assert "\n" not in message and "unknown queue" in message and "train, light" in message


def test_worker_with_an_unknown_queue_exits_with_one_line(tmp_path):
    """``python app.py worker --queues gpu``: exit 2, one error line, nothing started."""
    import subprocess
    import sys

    from worker.child_process import APP

    out = subprocess.run([sys.executable, str(APP), "worker", "--data-dir", str(tmp_path),
                          "--queues", "train,gpu"], capture_output=True, text=True, timeout=120,
                         check=False,
                         cwd=str(APP.parent))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        ("error: --queues train,gpu: unknown queue 'gpu'; choose from train, light "
         "(comma-separated)")]
    assert not (tmp_path / "queue.db").exists()
