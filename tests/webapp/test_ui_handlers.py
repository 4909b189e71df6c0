"""The Gradio views' event handlers called directly (no browser): roles, review, models.
The Annotate tab is the browser-side editor (tests/e2e/test_editor.py) over the REST API."""
from __future__ import annotations

import logging
import sqlite3
from types import SimpleNamespace

import gradio as gr
import pytest
from sqlalchemy.engine import make_url

from core.imageio import decode_label_png
from db.models import Origin, Revision, RevisionState
from db.settings import Settings
from tests.webapp.helpers import SyncTasks, make_studio, publish_version
from webapp import actions
from webapp.actions import queue_training
from webapp.auth import Actor
from webapp.db_faults import RepeatedFaultLog, database_fault_notice
from webapp.demo import fill_demo
from webapp.ui.common import shows_database_faults
from webapp.ui.model_versions import ModelsView
from webapp.ui.review import ReviewView


def _req(name: str | None, host: str = "127.0.0.1"):
    return SimpleNamespace(username=name, client=SimpleNamespace(host=host))


def _actor(studio, name: str) -> Actor:
    return studio.auth.from_username(name, "127.0.0.1")


@pytest.fixture()
def ui(settings):
    tasks = SyncTasks()
    studio = make_studio(settings, tasks=tasks)
    fill_demo(studio, 2, size=64, labelled_fraction=0.0)
    with gr.Blocks():
        review, models = ReviewView(studio), ModelsView(studio)
        review.build()
        models.build()
    return studio, tasks, review, models


def _main_line(studio, image_id):
    with studio.session() as session:
        return [(r.revision, r.state.value, decode_label_png(r.label_png, 19))
                for r in session.query(Revision).filter_by(image_id=image_id).order_by(Revision.id)]


def _submit_stroke(studio, name: str) -> int:
    """``name`` leases the next image and submits it with a skin stroke; its id."""
    opened = actions.next_image(studio, _actor(studio, name))
    labels = opened.start.labels.copy()
    labels[10:14, 5:40] = 1
    actions.save_labels(studio, _actor(studio, name), opened.image_id, labels,
                        opened.start.base_revision, RevisionState.submitted)
    return opened.image_id


def test_roles_are_enforced_in_the_views(ui):
    studio, tasks, review, models = ui
    image_id = _submit_stroke(studio, "ann")
    before = [(n, st) for n, st, _ in _main_line(studio, image_id)]
    denied = review.on_approve(str(image_id), "ok", _req("ann"))
    assert "needs the reviewer role" in denied[review.status]
    assert "needs the reviewer role" in review.on_refresh(_req("ann"))[review.status]
    assert "needs the admin role" in models.on_activate("1", _req("rev"))[models.status]
    assert "needs the reviewer role" in models.on_train(_req("ann"))[models.status]
    assert [(n, st) for n, st, _ in _main_line(studio, image_id)] == before
    assert not [c for c in tasks.calls if c[0] in ("training", "scoring")]
    approved = review.on_approve(str(image_id), "ok", _req("rev"))
    assert "Approved: image" in approved[review.status]
    assert _main_line(studio, image_id)[-1][1] == "approved"


def test_an_untouched_pre_annotation_is_saved_as_the_models_work(ui, tiny_parser):
    studio, _, _, _ = ui
    version = publish_version(studio, tiny_parser, "v.pt", {"mean_f1": 0.4321})
    opened = actions.next_image(studio, _actor(studio, "ann"))
    assert opened.start.source == "model" and opened.start.version.id == version
    assert "validation mean F1 0.432" in opened.start.version.describe()
    pristine = opened.start.labels
    actions.save_labels(studio, _actor(studio, "ann"), opened.image_id, pristine, None)
    edited = pristine.copy()
    edited[0, 0] = (int(edited[0, 0]) + 1) % 19
    actions.save_labels(studio, _actor(studio, "ann"), opened.image_id, edited, 1)
    with studio.session() as session:
        rows = session.query(Revision).order_by(Revision.id).all()
        assert [(r.origin, r.model_version_id) for r in rows] == [(Origin.model, version),
                                                                   (Origin.human, None)]


def test_a_rejected_label_goes_back_to_the_queue_with_the_comment(ui):
    studio, _, review, _ = ui
    image_id = _submit_stroke(studio, "ann")
    shown = review.on_refresh(_req("rev"))
    assert shown[review.summary].startswith(f"**Image #{image_id}**")
    out = review.on_reject(str(image_id), "ears are missing", _req("rev"))
    assert "Rejected (back in the queue)" in out[review.status]
    back = actions.open_image(studio, _actor(studio, "ann"), image_id)
    assert (back.start.revision.state, back.start.revision.comment) == ("rejected", "ears are missing")
    assert (back.start.labels[10:14, 5:40] == 1).all()
    with studio.session() as session:
        from db.annotation_queue import next_image
        from db.users import get_user_by_name
        queued = next_image(session, get_user_by_name(session, "ann").id,
                            exclude_ids=[i for i in (1, 2) if i != image_id])
        assert queued is not None and queued.id == image_id


def test_a_training_request_the_queue_refuses_does_not_block_later_ones(settings):
    from core.errors import FacetError
    from db.jobs import latest_job
    from db.models import JobState

    class DownQueue(SyncTasks):
        def enqueue_training(self, job_id: int) -> None:
            raise ConnectionError("queue unreachable")

    studio = make_studio(settings, tasks=DownQueue())
    with pytest.raises(FacetError, match="could not be queued: queue unreachable"):
        queue_training(studio, None, "test")
    with studio.session() as session:
        assert latest_job(session, "train").state == JobState.failed
    studio.tasks = SyncTasks()
    studio.tasks.studio = studio
    assert queue_training(studio, None, "test") > 0  # not "already queued"


def test_the_models_view_says_how_each_version_was_trained(ui, tiny_parser):
    studio, _, _, models = ui
    v1 = publish_version(studio, tiny_parser, "v1.pt", {"mean_f1": 0.4, "init_version_id": None,
                                                        "teacher_version_id": None})
    v2 = publish_version(studio, tiny_parser, "v2.pt", {"mean_f1": 0.6, "init_version_id": v1,
                                                        "teacher_version_id": None})
    v3 = publish_version(studio, tiny_parser, "v3.pt", {"mean_f1": 0.7, "init_version_id": v2,
                                                        "teacher_version_id": v2,
                                                        "num_approved": 2})
    v4 = publish_version(studio, tiny_parser, "cli.pt", {"mean_f1": 0.5})  # not trained here
    shown = models.refresh(_req("rev"))[models.versions]
    column = dict((row[0], row[4]) for row in shown)
    assert column == {v1: "fresh, no distillation", v2: f"v{v1}, no distillation",
                      v3: f"v{v2}, distilled from v{v2}", v4: "–"}
    labels = dict((row[0], row[3]) for row in shown)   # 3 labels each (publish_version)
    assert (labels[v3], labels[v1]) == ("3 (2 approved)", "3")


def test_a_busy_database_is_a_message_in_the_views_not_the_driver_error(settings, caplog):
    """A write held up past the busy timeout (another connection holds SQLite's write lock):
    the view says so in words (not the driver's), without promising that the click did
    nothing, and a timer event gets them as a return value instead of a pop-up."""
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's (tests/webapp/test_faults.py covers PostgreSQL)")
    quick = Settings.resolve(data_dir=settings.data_dir, database_url=settings.database_url,
                             queue_url=settings.queue_url, env={"FACET_DB_BUSY_TIMEOUT_MS": "200"})
    studio = make_studio(quick, tasks=SyncTasks())
    with gr.Blocks():
        models = ModelsView(studio)
        models.build()
    train = shows_database_faults(studio, models.on_train)
    quiet = shows_database_faults(studio, models.on_train, quietly=lambda words: {"line": words})
    # Gradio still sees the gr.Request parameter, so it fills it in
    assert gr.utils.get_type_hints(train)["request"] is gr.Request
    lock = sqlite3.connect(make_url(quick.database_url).database, timeout=0)
    try:
        lock.execute("BEGIN EXCLUSIVE")
        with pytest.raises(gr.Error) as raised:
            train(_req("adm"))
        words = raised.value.message
        assert words.startswith("The database is busy (another connection held a lock for "
                                "more than 0.2 s"), words
        assert "may or may not have been done" in words and "sqlite" not in words.lower()
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="webapp.db_faults"):
            for _ in range(3):  # a timer ticking through the outage
                assert quiet(_req("adm"))["line"] == f"⚠ {words}"
        levels = [r.levelno for r in caplog.records if r.name == "webapp.db_faults"]
        assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG], levels
    finally:
        lock.rollback()
        lock.close()
    assert "queued" in train(_req("adm"))[models.status]  # the lock gone, the same click works
    with pytest.raises(AttributeError):  # anything else is not dressed up as a database fault
        shows_database_faults(studio, lambda: None.missing)()


def test_a_repeating_fault_is_a_warning_once_a_minute():
    """An outage seen by a timer in every open tab: one WARNING, then DEBUG until a minute has
    passed, then WARNING again; after the event worked again, the next outage is a WARNING at
    once; an error that is not a database fault takes no turn."""
    now = [100.0]
    repeats = RepeatedFaultLog(every_s=60.0, clock=lambda: now[0])
    assert database_fault_notice(ValueError("a bug"), 1000, "UI tick", repeats) is None
    seen = []
    for t in (100.0, 101.0, 159.9, 160.0, 161.0, 230.0):
        now[0] = t
        seen.append(repeats.level())
    assert seen == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.WARNING,
                    logging.DEBUG, logging.WARNING]
    now[0] = 231.0
    assert repeats.level() == logging.DEBUG
    repeats.recovered()
    assert repeats.level() == logging.WARNING
