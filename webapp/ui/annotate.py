"""The Annotate view: queue, editor with the label overlay, palette, save/submit, history.

Per-user state is a :class:`~webapp.ui.work_state.Work` in ``gr.State``. Painted strokes are
merged into it (``render.apply_strokes``) whenever the user saves, changes the opacity, opens
the SAM tab or leaves the image; the editor is then redrawn with the merged map. Handlers are
adapters over :mod:`webapp.actions` (one database session per event); redrawing reads nothing
from the database.
"""
import functools
from dataclasses import replace
from datetime import datetime

import gradio as gr

from core.errors import FacetError
from db.models import Origin, RevisionState
from webapp import actions
from webapp.auth import Actor
from webapp.studio import Studio
from webapp.ui import palette, render
from webapp.ui.common import actor_of, fail, info, ok, warn
from webapp.ui.work_state import Work

EDITOR_HEIGHT = 620
HISTORY_COLUMNS = ["revision", "state", "origin", "author", "time (UTC)", "comment"]


def guarded(method):
    """Show :class:`FacetError` / ``ValueError`` of a handler in the status line instead of a
    crash; the state is left as it was."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (FacetError, ValueError) as err:
            return {self.status: fail(str(err))}
    return wrapper


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


class AnnotateView:
    """Builds the tab inside a ``gr.Blocks`` and wires its events."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.labels = studio.labels

    # ---------------------------------------------------------------- layout
    def build(self) -> None:
        ls = self.labels
        self.work = gr.State(None)
        self.skipped = gr.State(())
        with gr.Row(equal_height=False):
            self.header = gr.Markdown("### Press **Next image** to start annotating.",
                                      elem_id="facet-header")
        self.model_line = gr.Markdown("", elem_id="facet-model-line")
        with gr.Row():
            self.next_btn = gr.Button("Next image ▶", variant="primary", elem_id="facet-next", scale=2)
            self.skip_btn = gr.Button("Skip", elem_id="facet-skip", scale=1)
            self.jump_id = gr.Textbox(label="Image id", placeholder="e.g. 12", scale=1, max_lines=1,
                                      elem_id="facet-jump-id")
            self.jump_btn = gr.Button("Open", elem_id="facet-jump", scale=1)
        with gr.Row(equal_height=False):
            with gr.Column(scale=4):
                with gr.Tabs():
                    with gr.Tab("Paint", id="paint"):
                        self.editor = gr.ImageEditor(
                            type="numpy", image_mode="RGBA", format="png", label="Label map",
                            brush=palette.brush(ls, 1, 12), eraser=gr.Eraser(default_size=12), sources=(),
                            transforms=(), layers=False, height=EDITOR_HEIGHT,
                            interactive=True, elem_id="facet-editor")
                        gr.Markdown("Paint with the class picked on the right (or its key). To "
                                    "erase labels, paint **background** (key 0). Fresh strokes "
                                    "stay solid until you save; the editor's undo and eraser "
                                    "only take back such fresh strokes.",
                                    elem_classes=["facet-hint"])
                    self.sam_tab = gr.Tab("SAM (click to segment)", id="sam")
                    with self.sam_tab:
                        self._build_sam()
            with gr.Column(scale=1, min_width=220):
                self.palette = gr.Radio(palette.choices(ls), value="1", label="Class (keys)",
                                        elem_id="facet-palette")
                self.brush_size = gr.Slider(2, 60, value=12, step=1, label="Brush size (px)",
                                            elem_id="facet-brush-size")
                self.opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Overlay opacity",
                                         elem_id="facet-opacity")
                self.save_btn = gr.Button("Save draft", elem_id="facet-save")
                self.submit_btn = gr.Button("Submit for review", variant="primary",
                                            elem_id="facet-submit")
                self.reload_btn = gr.Button("Reload (drop unsaved)", size="sm", elem_id="facet-reload")
                self.status = gr.Markdown("", elem_id="facet-status")
        with gr.Accordion("History", open=False, elem_id="facet-history-box"):
            self.history = gr.Dataframe(headers=HISTORY_COLUMNS, interactive=False,
                                        elem_id="facet-history", wrap=True)
            with gr.Row():
                self.restore_choice = gr.Dropdown([], label="Revision", scale=1,
                                                  elem_id="facet-restore-choice")
                self.restore_btn = gr.Button("Restore as new draft", scale=1, elem_id="facet-restore")

    def _build_sam(self) -> None:
        from webapp.ui.sam_panel import SamPanel

        self.sam_panel = SamPanel(self)
        self.sam_panel.build()

    # ---------------------------------------------------------------- rendering
    @property
    def view_outputs(self) -> list:
        return [self.work, self.editor, self.header, self.model_line, self.history,
                self.restore_choice, self.status] + self.sam_panel.view_outputs

    def render(self, work: Work | None, opacity: float, message: str) -> dict:
        """Every output that shows ``work``."""
        if work is None:
            out = {self.work: None, self.editor: None, self.model_line: "", self.history: [],
                   self.header: "### No image open — press **Next image**.",
                   self.restore_choice: gr.update(choices=[], value=None), self.status: message}
            out.update(self.sam_panel.render(None, opacity))
            return out
        start = work.start
        if start.source == "revision":
            r = start.revision
            origin = f"Starting from revision {r.number} ({r.state}) by {r.author}, {_when(r.created_at)} UTC"
            if r.state == "rejected" and r.comment:
                origin += f" — reviewer said: “{r.comment}”"
        elif start.source == "model":
            origin = "Starting from the model's pre-annotation (not saved yet)"
        else:
            origin = ("**No model yet: the label map starts empty** (all background). Train one in "
                      "the *Models* tab once some images are approved")
        base = f"revision {work.base_revision}" if work.base_revision else "no revision yet"
        header = (f"### Image #{work.image_id} · {work.filename}\n{origin}. Saving goes on top of "
                  f"{base}.")
        version, active = start.version, work.active
        if version is not None:
            line = f"**Model:** pre-annotated by {version.describe()}."
        else:
            line = ("**Model:** no model version exists yet." if active is None else
                    f"**Model:** this revision was not pre-annotated; the active model is "
                    f"{active.describe()}.")
        rows = work.history
        table = [[r.number if r.number is not None else "kept draft", r.state, r.origin, r.author,
                  _when(r.created_at), r.comment or ""] for r in reversed(rows)]
        numbers = [str(r.number) for r in reversed(rows) if r.number is not None]
        out = {self.work: work, self.header: header, self.model_line: line,
               self.history: table,
               self.restore_choice: gr.update(choices=numbers, value=numbers[1] if len(numbers) > 1
                                              else (numbers[0] if numbers else None)),
               self.status: message}
        out.update(self.redraw(work, opacity))
        return out

    def redraw(self, work: Work, opacity: float) -> dict:
        """The outputs that draw ``work``'s pixels: the editor and the SAM view."""
        out = {self.work: work,
               self.editor: render.editor_value(work.photo, work.labels, opacity, self.labels)}
        out.update(self.sam_panel.render(work, opacity))
        return out

    def merged(self, work: Work, editor: dict | None) -> Work:
        """``work`` with the editor's painted strokes applied."""
        labels, _ = render.apply_strokes(editor, work.labels, self.labels)
        return work.with_labels(labels)

    # ---------------------------------------------------------------- queue
    def _show(self, opened, opacity: float, message: str) -> dict:
        return self.render(Work.of(opened), opacity, message)

    def _unsaved_guard(self, work: Work | None, editor: dict | None, opacity: float) -> dict | None:
        """A warning render when leaving ``work`` would drop unsaved changes (first time only)."""
        if work is None:
            return None
        work = self.merged(work, editor)
        if work.dirty and not work.discard_warned:
            out = self.render(replace(work, discard_warned=True), opacity,
                              warn(f"Image #{work.image_id} has unsaved changes: **Save draft** "
                                   "first, or press the button again to drop them."))
            return out
        return None

    def _next(self, actor: Actor, work: Work | None, skipped: tuple, opacity: float,
              release: int | None = None) -> dict:
        """Open the next image of the queue; an error opening it goes to the status line and
        leaves ``work`` as it is (so a caller's own message, e.g. "Submitted", survives)."""
        try:
            opened = actions.next_image(self.studio, actor, tuple(skipped), release)
        except (FacetError, ValueError) as err:
            return {self.status: fail(str(err)), self.work: work}
        if opened is None:
            more = " (some were skipped: reload the page to see them again)" if skipped else ""
            return {self.status: info(f"Nothing left to annotate{more}."), self.work: work}
        return self._show(opened, opacity, info(f"Opened image #{opened.image_id} from the queue."))

    @guarded
    def on_next(self, work: Work | None, editor: dict | None, skipped: tuple, opacity: float,
                request: gr.Request) -> dict:
        actor = actor_of(self.studio, request).require("annotate")
        if (stop := self._unsaved_guard(work, editor, opacity)) is not None:
            return stop
        return self._next(actor, work, skipped, opacity)

    @guarded
    def on_skip(self, work: Work | None, editor: dict | None, skipped: tuple, opacity: float,
                request: gr.Request) -> dict:
        actor = actor_of(self.studio, request).require("annotate")
        if work is None:
            return {self.status: info("Nothing to skip yet: press **Next image**.")}
        if (stop := self._unsaved_guard(work, editor, opacity)) is not None:
            return stop
        skipped = tuple(skipped) + (work.image_id,)
        out = self._next(actor, None, skipped, opacity, release=work.image_id)
        out[self.skipped] = skipped
        return out

    @guarded
    def on_jump(self, work: Work | None, editor: dict | None, image_id: str | int | None,
                opacity: float, request: gr.Request) -> dict:
        actor = actor_of(self.studio, request).require("view")
        text = str(image_id if image_id is not None else "").strip().lstrip("#")
        if not text.isdigit() or int(text) < 1:
            return {self.status: fail("Type an image id (a whole number ≥ 1) first.")}
        if (stop := self._unsaved_guard(work, editor, opacity)) is not None:
            return stop
        try:
            opened = actions.open_image(self.studio, actor, int(text))
        except actions.NotFound:
            return {self.status: fail(f"There is no image #{int(text)}.")}
        message = info(f"Opened image #{opened.image_id}.")
        if opened.held_until is not None:
            message = warn(f"Image #{opened.image_id} is reserved by another annotator until "
                           f"{_when(opened.held_until)} UTC; if you both save, the later save "
                           "gets a conflict.")
        return self._show(opened, opacity, message)

    @guarded
    def on_reload(self, work: Work | None, opacity: float, request: gr.Request) -> dict:
        actor = actor_of(self.studio, request).require("view")
        if work is None:
            return {self.status: info("No image open.")}
        opened = actions.open_image(self.studio, actor, work.image_id)
        return self._show(opened, opacity, info("Reloaded from the database."))

    # ---------------------------------------------------------------- painting
    def on_brush(self, class_id: str, size: float) -> dict:
        return {self.editor: gr.update(brush=palette.brush(self.labels, int(class_id), int(size)))}

    @guarded
    def on_opacity(self, work: Work | None, editor: dict | None, opacity: float) -> dict:
        if work is None:
            return {}
        return self.redraw(self.merged(work, editor), opacity)

    # ---------------------------------------------------------------- saving
    @guarded
    def on_save(self, work: Work | None, editor: dict | None, skipped: tuple, opacity: float,
                request: gr.Request, submit: bool = False) -> dict:
        actor = actor_of(self.studio, request).require("annotate")
        if work is None:
            return {self.status: info("Open an image first (**Next image**).")}
        work = self.merged(work, editor)
        start = work.start
        made_by = (start.version.id if start.version is not None else
                   start.revision.model_version_id if start.revision is not None else None)
        state = RevisionState.submitted if submit else RevisionState.draft
        outcome = actions.save_labels(self.studio, actor, work.image_id, work.labels,
                                      work.base_revision, state,
                                      Origin.model if work.pristine_model else Origin.human, made_by,
                                      with_history=True)
        work = replace(work, history=outcome.history)
        if outcome.conflict:
            work = replace(work, base_revision=outcome.current)
            return self.render(work, opacity, warn(
                f"**Not saved over revision {outcome.current}**: someone else saved it while you "
                "worked. Your label map is kept as a draft in the history (nothing is lost). "
                "Press the button again to put your version on top of theirs, or **Reload** to "
                "start from theirs."))
        if submit:
            done = ok(f"Submitted image #{work.image_id} as revision {outcome.number} for review.")
            nxt = self._next(actor, None, skipped, opacity)
            if nxt.get(self.work) is None:   # queue empty (or the next one failed to open)
                out = self.render(None, opacity, "")
                out[self.status] = f"{done}  \n{nxt.get(self.status, '')}"
                return out
            nxt[self.status] = f"{done}  \n{nxt[self.status]}"
            return nxt
        work = replace(work, base_revision=outcome.number, dirty=False, discard_warned=False)
        return self.render(work, opacity, ok(f"Saved draft revision {outcome.number} of image "
                                             f"#{work.image_id}."))

    @guarded
    def on_submit(self, work: Work | None, editor: dict | None, skipped: tuple, opacity: float,
                  request: gr.Request) -> dict:
        return self.on_save(work, editor, skipped, opacity, request, submit=True)

    @guarded
    def on_restore(self, work: Work | None, number: str | None, opacity: float,
                   request: gr.Request) -> dict:
        actor = actor_of(self.studio, request).require("annotate")
        if work is None or not number:
            return {self.status: info("Open an image and pick a revision to restore.")}
        outcome = actions.restore(self.studio, actor, work.image_id, int(number), work.base_revision)
        if outcome.conflict:
            return self.render(replace(work, base_revision=outcome.current,
                                       history=outcome.history), opacity, warn(
                f"Not restored: the image moved on to revision {outcome.current} meanwhile. "
                "Reload and try again."))
        opened = actions.open_image(self.studio, actor, work.image_id)
        return self._show(opened, opacity,
                          ok(f"Restored revision {number} as new draft revision {outcome.number}."))

    # ---------------------------------------------------------------- wiring
    def wire(self) -> None:
        views = self.view_outputs
        common = dict(show_progress="minimal")
        self.next_btn.click(self.on_next, [self.work, self.editor, self.skipped, self.opacity],
                            views, **common)
        self.skip_btn.click(self.on_skip, [self.work, self.editor, self.skipped, self.opacity],
                            views + [self.skipped], **common)
        self.jump_id.submit(self.on_jump, [self.work, self.editor, self.jump_id, self.opacity],
                            views, **common)
        self.jump_btn.click(self.on_jump, [self.work, self.editor, self.jump_id, self.opacity],
                            views, **common)
        self.reload_btn.click(self.on_reload, [self.work, self.opacity], views, **common)
        self.palette.change(self.on_brush, [self.palette, self.brush_size], [self.editor],
                            show_progress="hidden")
        self.brush_size.release(self.on_brush, [self.palette, self.brush_size], [self.editor],
                                show_progress="hidden")
        self.opacity.release(self.on_opacity, [self.work, self.editor, self.opacity], views,
                             show_progress="hidden")
        self.save_btn.click(self.on_save, [self.work, self.editor, self.skipped, self.opacity],
                            views, **common)
        self.submit_btn.click(self.on_submit, [self.work, self.editor, self.skipped, self.opacity],
                              views, **common)
        self.restore_btn.click(self.on_restore, [self.work, self.restore_choice, self.opacity],
                               views, **common)
        self.sam_panel.wire()


__all__ = ["AnnotateView"]
