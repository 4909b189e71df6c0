"""The Dataset view: progress counts, the per-class pixel share chart, every image's status."""
import gradio as gr

from db.annotation_queue import queue_counts
from db.images import list_images
from db.stats import compute_stats
from webapp.studio import Studio
from webapp.ui import charts
from webapp.ui.common import actor_of, fail

IMAGE_COLUMNS = ["id", "file", "status", "revision", "split"]


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

    @property
    def outputs(self) -> list:
        return [self.counts, self.shares, self.images]

    def on_refresh(self, request: gr.Request) -> dict:
        actor = actor_of(self.studio, request)
        if not actor.can("view"):
            return {self.counts: fail("Not allowed.")}
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
        return {self.counts: counts, self.shares: frame, self.images: rows}

    def wire(self, tab: gr.Tab) -> None:
        tab.select(self.on_refresh, None, self.outputs, show_progress="hidden")
        self.refresh_btn.click(self.on_refresh, None, self.outputs)
