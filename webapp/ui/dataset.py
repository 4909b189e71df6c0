"""The Dataset view: progress counts, the per-class pixel share chart, every image's status,
and (admins) deleting an image with all its data."""
from functools import partial

import gradio as gr

from core.errors import FacetError
from db.annotation_queue import queue_counts
from db.deletion import KEPT_NOTE, MAX_REASON
from db.images import list_images
from db.stats import compute_stats
from webapp import actions
from webapp.auth import Actor
from webapp.studio import Studio
from webapp.ui import charts
from webapp.ui.common import actor_of, fail, ok, shows_database_faults, warn

IMAGE_COLUMNS = ["id", "file", "status", "revision", "split"]
DELETE_HELP = ("Deletes the image **for good** with all its revisions, pre-annotations, SAM "
               "embeddings, queue state and files on disk. Only a record stays: the image id, "
               "who, when, the reason and how much was removed — no file name, no pixels. "
               f"{KEPT_NOTE} Admins only.")


class DatasetView:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def build(self) -> None:
        with gr.Row():
            self.counts = gr.Markdown("", elem_id="facet-dataset-counts")
            self.refresh_btn = gr.Button("Refresh", scale=0, elem_id="facet-dataset-refresh")
        self.shares = gr.BarPlot(None, x="class",
                                 y="share (%)", title="Share of labelled pixels per class "
                                 "(newest label map of every image)", height=320,
                                 elem_id="facet-class-shares", sort="-y")
        self.images = gr.Dataframe(headers=IMAGE_COLUMNS, interactive=False, max_height=360,
                                   label="Images (open one by id in Annotate)",
                                   elem_id="facet-images")
        with gr.Accordion("Delete an image (admins)", open=False, elem_id="facet-delete"):
            gr.Markdown(DELETE_HELP, elem_classes="facet-hint")
            with gr.Row():
                self.delete_id = gr.Textbox(label="Image id", scale=1, elem_id="facet-delete-id")
                self.delete_reason = gr.Textbox(label="Reason (optional; kept in the record, "
                                                "so no personal data)", scale=3,
                                                max_length=MAX_REASON,
                                                elem_id="facet-delete-reason")
            self.delete_confirm = gr.Checkbox(False, label="I understand: the image and all its "
                                              "data are deleted for good",
                                              elem_id="facet-delete-confirm")
            self.delete_btn = gr.Button("Delete image and all its data", variant="stop",
                                        interactive=False, elem_id="facet-delete-btn")
            self.delete_status = gr.Markdown("", elem_id="facet-delete-status")

    @property
    def outputs(self) -> list:
        return [self.counts, self.shares, self.images, self.delete_btn]

    @property
    def delete_outputs(self) -> list:
        return self.outputs + [self.delete_status, self.delete_confirm, self.delete_id]

    def _refresh(self, actor: Actor) -> dict:
        with self.studio.session() as session:
            stats = compute_stats(session, self.studio.labels)
            queue = queue_counts(session)
            rows = [[s.image.id, s.image.source_name, s.status,
                     s.revision if s.revision is not None else "", s.image.split]
                    for s in list_images(session)]
        pct = lambda n: f"{100 * n / stats.images:.0f} %" if stats.images else "–"  # noqa: E731
        counts = (f"**{stats.images}** images · **{stats.annotated}** annotated ({pct(stats.annotated)}) · "
                  f"**{stats.submitted}** submitted or approved · **{stats.approved}** approved "
                  f"({pct(stats.approved)}) · {stats.rejected} rejected  \n"
                  f"Queue: {queue['available']} waiting, {queue['leased']} being annotated now")
        names = [n for n in stats.class_share if n != "background"]
        frame = charts.frame([(n, round(100 * stats.class_share[n], 3)) for n in names],
                             charts.SHARES)
        return {self.counts: counts, self.shares: frame, self.images: rows,
                self.delete_btn: gr.update(interactive=actor.can("delete"))}

    def on_refresh(self, request: gr.Request) -> dict:
        actor = actor_of(self.studio, request)
        if not actor.can("view"):
            return {self.counts: fail("Not allowed.")}
        return self._refresh(actor)

    def on_delete(self, image_id: str | None, reason: str | None, confirmed: bool,
                  request: gr.Request) -> dict:
        """Delete the image ``image_id`` (admins, with the confirmation ticked)."""
        try:
            actor = actor_of(self.studio, request).require("delete")
            text = (image_id or "").strip()
            if not text.isdigit():
                return {self.delete_status: warn("Enter the id of the image to delete (a number, "
                                                 "see the table above).")}
            if not confirmed:
                return {self.delete_status: warn("Tick the confirmation box first: the image and "
                                                 "all its data are deleted for good.")}
            record = actions.delete_image(self.studio, actor, int(text), reason)
        except FacetError as err:
            return {self.delete_status: fail(str(err))}
        line = (f"Deleted image {record.image_id}: removed {record.removed_line()}. Recorded as "
                f"deletion {record.id} by {record.deleted_by or actor.name} at "
                f"{record.deleted_at:%Y-%m-%d %H:%M} UTC. {KEPT_NOTE}")
        if record.files_failed:
            line += "  \n" + warn(f"{record.files_failed} file(s) could not be removed; run "
                                 "`python app.py sweep-files --yes` on the server.")
        out = self._refresh(actor)
        out.update({self.delete_status: ok(line), self.delete_confirm: False, self.delete_id: ""})
        return out

    def wire(self, tab: gr.Tab) -> None:
        guard = partial(shows_database_faults, self.studio)
        tab.select(guard(self.on_refresh), None, self.outputs, show_progress="hidden")
        self.refresh_btn.click(guard(self.on_refresh), None, self.outputs)
        self.delete_btn.click(guard(self.on_delete), [self.delete_id, self.delete_reason,
                                               self.delete_confirm], self.delete_outputs)
