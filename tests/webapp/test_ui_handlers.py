"""The UI's event handlers called directly (no browser): conflicts, roles, the model line."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from core.imageio import decode_label_png
from core.labels import CELEBAMASK
from db.models import Revision
from tests.webapp.helpers import SyncTasks, make_studio, publish_version
from webapp.actions import queue_training
from webapp.demo import fill_demo
from webapp.ui.annotate import AnnotateView
from webapp.ui.model_versions import ModelsView
from webapp.ui.review import ReviewView


def _req(name: str | None, host: str = "127.0.0.1"):
    return SimpleNamespace(username=name, client=SimpleNamespace(host=host))


def _stroke(shape, class_id, rows=slice(10, 14), cols=slice(5, 40)):
    layer = np.zeros(shape + (4,), np.uint8)
    layer[rows, cols, :3] = CELEBAMASK.palette[class_id]
    layer[rows, cols, 3] = 255
    return {"background": None, "layers": [layer], "composite": None}


@pytest.fixture()
def ui(tmp_path):
    tasks = SyncTasks()
    studio = make_studio(tmp_path, tasks=tasks)
    fill_demo(studio, 2, size=64, labelled_fraction=0.0)
    with gr.Blocks():
        annotate, review, models = AnnotateView(studio), ReviewView(studio), ModelsView(studio)
        annotate.build()
        review.build()
        models.build()
    return studio, tasks, annotate, review, models


def _main_line(studio, image_id):
    with studio.session() as session:
        return [(r.revision, r.state.value, decode_label_png(r.label_png, 19))
                for r in session.query(Revision).filter_by(image_id=image_id).order_by(Revision.id)]


def test_a_stale_save_gets_a_clear_message_and_the_work_is_kept(ui):
    studio, _, view, _, _ = ui
    a = view.on_next(None, None, (), 0.5, _req("ann"))
    work_a = a[view.work]
    assert "No model yet" in a[view.header] and "no model version" in a[view.model_line]
    b = view.on_jump(None, None, str(work_a.image_id), 0.5, _req("rev"))
    work_b = b[view.work]
    assert "reserved by another annotator" in b[view.status]

    saved = view.on_save(work_a, _stroke(work_a.labels.shape, 2), (), 0.5, _req("ann"))
    assert "Saved draft revision 1" in saved[view.status]
    lost = view.on_save(work_b, _stroke(work_b.labels.shape, 4), (), 0.5, _req("rev"))
    assert "Not saved over revision 1" in lost[view.status] and "nothing is lost" in lost[view.status]
    rows = _main_line(studio, work_a.image_id)
    assert [(n, s) for n, s, _ in rows] == [(1, "draft"), (None, "draft")]
    assert (rows[0][2][10:14, 5:40] == 2).all() and (rows[1][2][10:14, 5:40] == 4).all()

    # Pressing save again puts B's version on top, knowingly.
    again = view.on_save(lost[view.work], None, (), 0.5, _req("rev"))
    assert "Saved draft revision 2" in again[view.status]
    assert (_main_line(studio, work_a.image_id)[-1][2][10:14, 5:40] == 4).all()


def test_leaving_unsaved_work_warns_once_then_submit_moves_on(ui):
    studio, tasks, view, _, _ = ui
    work = view.on_next(None, None, (), 0.5, _req("ann"))[view.work]
    warned = view.on_next(work, _stroke(work.labels.shape, 13), (), 0.5, _req("ann"))
    assert "unsaved changes" in warned[view.status]
    kept = warned[view.work]
    assert (kept.labels[10:14, 5:40] == 13).all()           # the strokes were not dropped
    done = view.on_submit(kept, None, (), 0.5, _req("ann"))
    assert "Submitted image" in done[view.status] and done[view.work].image_id != work.image_id
    assert _main_line(studio, work.image_id)[-1][1] == "submitted"
    assert ("label_saved", work.image_id) in tasks.calls


def test_a_double_click_on_save_is_one_save_not_a_conflict(ui):
    studio, _, view, _, _ = ui
    work = view.on_next(None, None, (), 0.5, _req("ann"))[view.work]
    stroke = _stroke(work.labels.shape, 2)
    first = view.on_save(work, stroke, (), 0.5, _req("ann"))
    second = view.on_save(work, stroke, (), 0.5, _req("ann"))  # the click queued behind it
    assert "Saved draft revision 1" in first[view.status]
    assert "Saved draft revision 1" in second[view.status], second[view.status]
    late = view.on_save(first[view.work], None, (), 0.5, _req("ann"))  # clicked after the answer
    assert "Saved draft revision 1" in late[view.status], late[view.status]
    assert [(n, s) for n, s, _ in _main_line(studio, work.image_id)] == [(1, "draft")]


def test_roles_are_enforced_in_the_views(ui):
    studio, tasks, annotate, review, models = ui
    work = annotate.on_next(None, None, (), 0.5, _req("ann"))[annotate.work]
    annotate.on_submit(work, _stroke(work.labels.shape, 1), (), 0.5, _req("ann"))
    before = [(n, st) for n, st, _ in _main_line(studio, work.image_id)]
    denied = review.on_approve(str(work.image_id), "ok", _req("ann"))
    assert "needs the reviewer role" in denied[review.status]
    assert "needs the reviewer role" in review.on_refresh(_req("ann"))[review.status]
    assert "needs the admin role" in models.on_activate("1", _req("rev"))[models.status]
    assert "needs the reviewer role" in models.on_train(_req("ann"))[models.status]
    assert [(n, st) for n, st, _ in _main_line(studio, work.image_id)] == before
    assert not [c for c in tasks.calls if c[0] in ("training", "scoring")]
    approved = review.on_approve(str(work.image_id), "ok", _req("rev"))
    assert "Approved: image" in approved[review.status]
    assert _main_line(studio, work.image_id)[-1][1] == "approved"
    assert "restart" in annotate.on_next(None, None, (), 0.5, _req(None))[annotate.status]


def test_the_model_line_names_the_version_and_its_f1(ui, tiny_parser):
    studio, _, view, _, _ = ui
    version = publish_version(studio, tiny_parser, "v.pt", {"mean_f1": 0.4321})
    out = view.on_next(None, None, (), 0.5, _req("ann"))
    assert f"model v{version} (validation mean F1 0.432" in out[view.model_line]
    assert "model's pre-annotation" in out[view.header]
    assert out[view.work].start.source == "model"
    saved = view.on_save(out[view.work], None, (), 0.5, _req("ann"))
    assert "Saved draft revision 1" in saved[view.status]
    with studio.session() as session:
        row = session.query(Revision).one()
        assert row.origin.value == "model" and row.model_version_id == version


def test_jump_errors_are_explained(ui):
    _, _, view, _, _ = ui
    assert "no image #99" in view.on_jump(None, None, 99, 0.5, _req("ann"))[view.status].lower()
    assert "whole number" in view.on_jump(None, None, None, 0.5, _req("ann"))[view.status]
    assert "whole number" in view.on_jump(None, None, "abc", 0.5, _req("ann"))[view.status]
    assert view.on_jump(None, None, " #2 ", 0.5, _req("ann"))[view.work].image_id == 2



def test_sam_clicks_in_the_ui_embed_once_and_accept_paints_the_class(tmp_path):
    from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
    from webapp.options import ServeOptions
    from webapp.ui.sam_panel import MODES

    options = ServeOptions(sam_checkpoint=write_tiny_checkpoint(tmp_path / "sam.pth"),
                           sam_model="tiny", sam_builders=TINY_BUILDERS)
    studio = make_studio(tmp_path, options)
    fill_demo(studio, 1, size=64, labelled_fraction=0.0)
    calls = [0]
    studio.sam.model.sam.image_encoder.register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1))
    with gr.Blocks():
        view = AnnotateView(studio)
        view.build()
    panel = view.sam_panel
    work = view.on_next(None, None, (), 0.5, _req("ann"))[view.work]
    hat = str(CELEBAMASK.id("hat"))
    tab = panel.on_tab(work, _stroke(work.labels.shape, 13), 0.5, hat)
    work = tab[view.work]
    assert (work.labels[10:14, 5:40] == 13).all()                  # strokes merged on the way in
    assert "first click" in tab[panel.sam_status] and calls[0] == 0
    for point in [(32, 30), (20, 40)]:
        out = panel.on_click(work, MODES[0], 0.5, hat, SimpleNamespace(index=list(point)), _req("ann"))
        work = out[view.work]
    corner = panel.on_click(work, MODES[2], 0.5, hat, SimpleNamespace(index=[5, 5]), _req("ann"))
    assert "opposite corner" in corner[panel.sam_status]
    work = panel.on_click(corner[view.work], MODES[2], 0.5, hat, SimpleNamespace(index=[60, 60]),
                          _req("ann"))[view.work]
    assert calls[0] == 1 and work.box == (5, 5, 60, 60) and len(work.clicks) == 2
    assert work.preview.shape == work.labels.shape and 0 < work.preview.sum() < work.preview.size
    accepted = panel.on_accept(work, hat, False, 0.5, _req("ann"))
    done = accepted[view.work]
    assert np.array_equal(done.labels[work.preview], np.full(work.preview.sum(), int(hat), np.uint8))
    assert done.dirty and done.preview is None and not done.clicks
    keep = panel.on_accept(replace(done, preview=work.preview), "1", True, 0.5, _req("ann"))
    assert (keep[view.work].labels[work.preview] == int(hat)).all()  # other classes left alone


def test_history_restores_any_earlier_revision_as_a_new_draft(ui):
    studio, _, view, _, _ = ui
    work = view.on_next(None, None, (), 0.5, _req("ann"))[view.work]
    first = view.on_save(work, _stroke(work.labels.shape, 2), (), 0.5, _req("ann"))
    second = view.on_save(first[view.work], _stroke(work.labels.shape, 7, rows=slice(30, 40)), (),
                          0.5, _req("ann"))
    assert second[view.history][0][:3] == [2, "draft", "human"]       # newest first, with author
    assert second[view.history][0][3] == "ann"
    restored = view.on_restore(second[view.work], "1", 0.5, _req("ann"))
    assert "Restored revision 1 as new draft revision 3" in restored[view.status]
    rows = _main_line(studio, work.image_id)
    assert [n for n, _, _ in rows] == [1, 2, 3] and np.array_equal(rows[2][2], rows[0][2])
    assert np.array_equal(restored[view.work].labels, rows[0][2])
    again = view.on_restore(second[view.work], "1", 0.5, _req("ann"))   # a double click: one restore
    assert "Restored revision 1 as new draft revision 3" in again[view.status]
    stale = view.on_restore(second[view.work], "2", 0.5, _req("ann"))   # started from 2, now 3
    assert "moved on to revision 3" in stale[view.status]
    assert [n for n, _, _ in _main_line(studio, work.image_id)] == [1, 2, 3, None]


def test_a_rejected_label_goes_back_to_the_queue_with_the_comment(ui):
    studio, _, annotate, review, _ = ui
    work = annotate.on_next(None, None, (), 0.5, _req("ann"))[annotate.work]
    annotate.on_submit(work, _stroke(work.labels.shape, 1), (), 0.5, _req("ann"))
    shown = review.on_refresh(_req("rev"))
    assert shown[review.summary].startswith(f"**Image #{work.image_id}**")
    out = review.on_reject(str(work.image_id), "ears are missing", _req("rev"))
    assert "Rejected (back in the queue)" in out[review.status]
    back = annotate.on_jump(None, None, str(work.image_id), 0.5, _req("ann"))
    assert "(rejected)" in back[annotate.header] and "ears are missing" in back[annotate.header]
    with studio.session() as session:
        from db.annotation_queue import next_image
        from db.users import get_user_by_name
        queued = next_image(session, get_user_by_name(session, "ann").id,
                            exclude_ids=[i for i in (1, 2) if i != work.image_id])
        assert queued is not None and queued.id == work.image_id


def test_skip_moves_on_and_keeps_the_skipped_image_out_of_next(ui):
    _, _, view, _, _ = ui
    first = view.on_next(None, None, (), 0.5, _req("ann"))[view.work]
    skipped = view.on_skip(first, None, (), 0.5, _req("ann"))
    assert skipped[view.skipped] == (first.image_id,)
    second = skipped[view.work]
    assert second.image_id != first.image_id
    done = view.on_skip(second, None, skipped[view.skipped], 0.5, _req("ann"))
    assert "Nothing left to annotate (some were skipped" in done[view.status]


def test_a_training_request_the_queue_refuses_does_not_block_later_ones(tmp_path):
    from core.errors import FacetError
    from db.jobs import latest_job
    from db.models import JobState

    class DownQueue(SyncTasks):
        def enqueue_training(self, job_id: int) -> None:
            raise ConnectionError("queue unreachable")

    studio = make_studio(tmp_path, tasks=DownQueue())
    with pytest.raises(FacetError, match="could not be queued: queue unreachable"):
        queue_training(studio, None, "test")
    with studio.session() as session:
        assert latest_job(session, "train").state == JobState.failed
    studio.tasks = SyncTasks()
    studio.tasks.studio = studio
    assert queue_training(studio, None, "test") > 0  # not "already queued"


def test_the_models_view_says_how_each_version_was_trained(ui, tiny_parser):
    studio, _, _, _, models = ui
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
