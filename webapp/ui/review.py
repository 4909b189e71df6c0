"""The Review view (reviewers and admins): approve or reject submitted label maps, with a comment.

Rejected ones go back to the annotation queue (db.annotation_queue treats them as needing work).
"""
from datetime import datetime
from functools import partial

import gradio as gr
import numpy as np

from core.errors import FacetError
from core.imageio import decode_label_png, resize_image
from db.images import read_image
from db.review import list_submitted
from db.revisions import latest_revision, require_image
from webapp.actions import decide
from webapp.studio import Studio
from webapp.ui import render
from webapp.ui.common import actor_of, fail, info, ok, shows_database_faults


def _ago(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


class ReviewView:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def build(self) -> None:
        gr.Markdown("Submitted label maps, oldest first. Rejecting sends the image back to the "
                    "annotation queue with your comment.")
        with gr.Row():
            self.choice = gr.Dropdown([], label="Waiting for review", scale=4,
                                      elem_id="facet-review-choice")
            self.refresh_btn = gr.Button("Refresh", scale=1, elem_id="facet-review-refresh")
        self.summary = gr.Markdown("", elem_id="facet-review-summary")
        with gr.Row():
            self.photo = gr.Image(type="numpy", format="png", interactive=False, label="Photo",
                                  height=420, elem_id="facet-review-photo")
            self.labels = gr.Image(type="numpy", format="png", interactive=False,
                                   label="Label map (overlay)", height=420,
                                   elem_id="facet-review-labels")
        self.comment = gr.Textbox(label="Comment (shown to the annotator)", lines=2,
                                  elem_id="facet-review-comment")
        with gr.Row():
            self.approve_btn = gr.Button("Approve ✓", variant="primary", elem_id="facet-approve")
            self.reject_btn = gr.Button("Reject ✗ (back to the queue)", variant="stop",
                                        elem_id="facet-reject")
        self.status = gr.Markdown("", elem_id="facet-review-status")

    @property
    def outputs(self) -> list:
        return [self.choice, self.summary, self.photo, self.labels, self.comment, self.status]

    def _show(self, image_id: int | None) -> dict:
        if image_id is None:
            return {self.summary: "", self.photo: None, self.labels: None}
        with self.studio.session() as session:
            image = require_image(session, image_id)
            rev = latest_revision(session, image_id)
            size = (image.label_width, image.label_height)
            photo = resize_image(read_image(self.studio.settings, image), size)
            labels = decode_label_png(rev.label_png, self.studio.labels.num_classes)
            who = rev.author.name if rev.author is not None else "local"
            summary = (f"**Image #{image_id}** · {image.source_name} · revision {rev.revision} by "
                       f"{who}, {_ago(rev.created_at)} UTC")
        present = [self.studio.labels.human_name(i) for i in np.unique(labels) if i > 0]
        summary += "  \nClasses: " + (", ".join(present) if present else "none (all background)")
        return {self.summary: summary, self.photo: photo,
                self.labels: render.overlay(photo, labels, 0.6, self.studio.labels)}

    def refresh(self, request: gr.Request, message: str = "", keep: str | None = None) -> dict:
        actor = actor_of(self.studio, request)
        if not actor.can("review"):
            return {self.status: fail(f"{actor.name} is {actor.role.value}: reviewing needs the "
                                      "reviewer role.")}
        with self.studio.session() as session:
            waiting = [(f"#{r.image_id} · {r.image.source_name} · rev {r.revision} by "
                        f"{r.author.name if r.author else 'local'}", str(r.image_id))
                       for r in list_submitted(session)]
        ids = [v for _, v in waiting]
        pick = keep if keep in ids else (ids[0] if ids else None)
        out = {self.choice: gr.update(choices=waiting, value=pick), self.comment: "",
               self.status: message or (info("Nothing waiting for review.") if not ids else "")}
        out.update(self._show(int(pick) if pick else None))
        return out

    def on_refresh(self, request: gr.Request) -> dict:
        return self.refresh(request)

    def on_choice(self, choice: str | None, request: gr.Request) -> dict:
        actor = actor_of(self.studio, request)
        if not actor.can("review") or not choice:
            return {}
        try:
            return self._show(int(choice))
        except FacetError as err:
            return {self.status: fail(str(err))}

    def decide(self, choice: str | None, comment: str, approved: bool, request: gr.Request) -> dict:
        try:
            actor = actor_of(self.studio, request).require("review")
            if not choice:
                return {self.status: info("Nothing selected.")}
            decision = decide(self.studio, actor, int(choice), approved, comment.strip() or None)
        except FacetError as err:
            return {self.status: fail(str(err))}
        image_id, number = decision.image_id, decision.revision
        verb = "Approved" if approved else "Rejected (back in the queue)"
        return self.refresh(request, ok(f"{verb}: image #{image_id}, revision {number}."))

    def on_approve(self, choice: str | None, comment: str, request: gr.Request) -> dict:
        return self.decide(choice, comment, True, request)

    def on_reject(self, choice: str | None, comment: str, request: gr.Request) -> dict:
        return self.decide(choice, comment, False, request)

    def wire(self, tab: gr.Tab) -> None:
        guard = partial(shows_database_faults, self.studio)
        tab.select(guard(self.on_refresh), None, self.outputs, show_progress="hidden")
        self.refresh_btn.click(guard(self.on_refresh), None, self.outputs)
        self.choice.input(guard(self.on_choice), [self.choice], self.outputs)
        self.approve_btn.click(guard(self.on_approve), [self.choice, self.comment], self.outputs)
        self.reject_btn.click(guard(self.on_reject), [self.choice, self.comment], self.outputs)
