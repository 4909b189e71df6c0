"""SAM inside the Annotate view: clicks and a box for the selected class, a preview, accept.

Clicks arrive in label-map pixels (the image shown is at the label size) and are scaled to
the original image for SAM; the mask comes back at image size and is resized (nearest) to the
label size. The embedding is cached per image, so only an image's first click may be slow.
"""
import functools
from dataclasses import replace

import gradio as gr
import numpy as np
from PIL import Image as PILImage

from core.errors import FacetError
from webapp.sam_service import NOT_CONFIGURED
from webapp.ui import render
from webapp.ui.common import actor_of, info, ok, warn
from webapp.ui.work_state import Work

MODES = ["+ on the object", "− not on the object", "□ box (two corners)"]


class SamPanel:
    """The SAM tab's components and handlers; ``view`` is the owning AnnotateView."""

    def __init__(self, view) -> None:
        self.view = view
        self.studio = view.studio
        self.enabled = self.studio.sam is not None

    def build(self) -> dict:
        if not self.enabled:
            gr.Markdown(f"ℹ {NOT_CONFIGURED}", elem_id="facet-sam-off")
        self.image = gr.Image(type="numpy", format="png", interactive=False, label="Click on the image",
                              elem_id="facet-sam-image", visible=self.enabled, height=620)
        with gr.Row(visible=self.enabled):
            self.mode = gr.Radio(MODES, value=MODES[0], label="Click adds", elem_id="facet-sam-mode",
                                 scale=3)
            self.keep_others = gr.Checkbox(False, label="Leave other classes' pixels alone",
                                           elem_id="facet-sam-keep", scale=2)
        with gr.Row(visible=self.enabled):
            self.accept_btn = gr.Button("Accept mask as selected class", variant="primary",
                                        elem_id="facet-sam-accept")
            self.clear_btn = gr.Button("Clear clicks", elem_id="facet-sam-clear")
        self.sam_status = gr.Markdown("", elem_id="facet-sam-status")
        return {}

    @property
    def view_outputs(self) -> list:
        return [self.image, self.sam_status]

    def render(self, work: Work | None, opacity: float, class_id: int = 1) -> dict:
        if work is None or not self.enabled:
            return {self.image: None, self.sam_status: ""}
        base = render.overlay(work.photo, work.labels, opacity, self.view.labels)
        color = self.view.labels.palette[class_id]
        shown = render.sam_view(base, work.clicks, work.box, work.corner, work.preview, color)
        score = f" SAM score {work.preview_score:.2f}." if work.preview_score is not None else ""
        return {self.image: shown, self.sam_status: score.strip()}

    def _mask(self, work: Work) -> tuple[np.ndarray, float]:
        """Ask SAM for the current prompts; label-size bool mask and score."""
        sx, sy = work.scale
        h, w = work.labels.shape
        big_w, big_h = round(w * sx), round(h * sy)
        points = [(min(x * sx, big_w - 1), min(y * sy, big_h - 1), p) for x, y, p in work.clicks]
        box = None
        if work.box is not None:
            x0, y0, x1, y1 = work.box
            box = (x0 * sx, y0 * sy, min((x1 + 1) * sx, big_w), min((y1 + 1) * sy, big_h))
        mask, score = self.studio.sam.mask(work.image_id, points, box)
        if mask.shape != (h, w):
            mask = np.asarray(PILImage.fromarray(mask.astype(np.uint8) * 255)
                              .resize((w, h), PILImage.NEAREST)) > 127
        return mask, score

    def on_tab(self, work: Work | None, editor: dict | None, opacity: float, class_id: str) -> dict:
        if work is None or not self.enabled:
            return {}
        work = self.view.merged(work, editor)
        out = {self.view.work: work,
               self.view.editor: render.editor_value(work.photo, work.labels, opacity, self.view.labels)}
        out.update(self.render(work, opacity, int(class_id)))
        if not self.studio.sam.ready(work.image_id):
            out[self.sam_status] = info("The first click on this image computes its SAM embedding "
                                        "(a few seconds, once); later clicks are instant.")
        return out

    def on_click(self, work: Work | None, mode: str, opacity: float, class_id: str,
                 evt: gr.SelectData, request: gr.Request) -> dict:
        actor_of(self.studio, request).require("annotate")
        if work is None or not self.enabled:
            return {}
        x, y = (int(v) for v in evt.index[:2])
        if mode == MODES[2]:
            if work.corner is None:
                work = replace(work, corner=(x, y))
                out = self.render(work, opacity, int(class_id))
                out[self.view.work] = work
                out[self.sam_status] = info("Now click the opposite corner of the box.")
                return out
            (cx, cy) = work.corner
            work = replace(work, corner=None,
                           box=(min(x, cx), min(y, cy), max(x, cx), max(y, cy)))
        else:
            work = replace(work, clicks=work.clicks + ((x, y, 1 if mode == MODES[0] else 0),))
        if not work.clicks and work.box is None:
            return {self.view.work: work}
        mask, score = self._mask(work)
        work = replace(work, preview=mask, preview_score=score)
        out = self.render(work, opacity, int(class_id))
        out[self.view.work] = work
        return out

    def on_accept(self, work: Work | None, class_id: str, keep_others: bool,
                  opacity: float, request: gr.Request) -> dict:
        actor_of(self.studio, request).require("annotate")
        if work is None or work.preview is None:
            return {self.sam_status: info("Click on the object first; the preview shows what "
                                          "will be painted.")}
        cid = int(class_id)
        labels = render.apply_mask(work.labels, work.preview, cid, keep_others)
        changed = int((labels != work.labels).sum())
        work = work.with_labels(labels).clear_prompts()
        out = self.render(work, opacity, cid)
        out[self.view.work] = work
        out[self.view.editor] = render.editor_value(work.photo, work.labels, opacity, self.view.labels)
        name = self.view.labels.human_name(cid)
        out[self.sam_status] = (ok(f"Painted {changed} pixels as {name} (not saved yet).") if changed
                                else warn("The mask changed nothing (other classes were left alone?)."))
        return out

    def on_clear(self, work: Work | None, opacity: float, class_id: str) -> dict:
        if work is None:
            return {}
        work = work.clear_prompts()
        out = self.render(work, opacity, int(class_id))
        out[self.view.work] = work
        return out

    def wire(self) -> None:
        v = self.view
        outs = [v.work, v.editor, self.image, self.sam_status, v.status]
        self.view.sam_tab.select(self._guard(self.on_tab), [v.work, v.editor, v.opacity, v.palette],
                                 outs, show_progress="hidden")
        if not self.enabled:
            return
        self.image.select(self._guard(self.on_click), [v.work, self.mode, v.opacity, v.palette],
                          outs, show_progress="minimal")
        self.accept_btn.click(self._guard(self.on_accept),
                              [v.work, v.palette, self.keep_others, v.opacity], outs)
        self.clear_btn.click(self._guard(self.on_clear), [v.work, v.opacity, v.palette],
                             outs, show_progress="hidden")

    def _guard(self, fn):
        """Errors go to the SAM status line (see ``annotate.guarded``)."""
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (FacetError, ValueError) as err:
                return {self.sam_status: f"✗ {err}"}
        return wrapper
