"""The whole UI: a header (who is logged in, the open-mode notice) and one tab per view."""
import gradio as gr

from webapp.studio import Studio
from webapp.ui.annotate import AnnotateView, head_tags
from webapp.ui.common import actor_of, shows_database_faults
from webapp.ui.dataset import DatasetView
from webapp.ui.model_versions import ModelsView
from webapp.ui.review import ReviewView

OPEN_MODE_NOTICE = ("⚠ **No users exist: anyone on this machine can edit everything.** "
                    "Add one with `python app.py users add NAME --role admin` and restart.")

BASE_CSS = """
#facet-whoami { text-align: right; }
.facet-hint { font-size: 0.85em; opacity: 0.8; }
#facet-status, #facet-sam-status { min-height: 2.5em; }
"""


def css(studio: Studio) -> str:
    return BASE_CSS


def head(studio: Studio) -> str:
    return head_tags()


def build_blocks(studio: Studio) -> gr.Blocks:
    """Every view, wired. All state is per session (``gr.State``) or in the database."""
    annotate, review = AnnotateView(), ReviewView(studio)
    dataset, models = DatasetView(studio), ModelsView(studio)
    with gr.Blocks(title="Facet — face parsing studio") as blocks:
        with gr.Row():
            gr.Markdown("## Facet · face-parsing annotation studio", elem_id="facet-title")
            whoami = gr.Markdown("", elem_id="facet-whoami")
        notice = gr.Markdown("", visible=False, elem_id="facet-open-notice")
        with gr.Tabs():
            with gr.Tab("Annotate", id="annotate", elem_id="facet-tab-annotate"):
                annotate.build()
            # Hidden until on_load shows it to reviewers (gradio 6 shows a tab on an update
            # to visible=True, but does not hide a shown one on visible=False).
            review_tab = gr.Tab("Review", id="review", elem_id="facet-tab-review", visible=False)
            with review_tab:
                review.build()
            dataset_tab = gr.Tab("Dataset", id="dataset", elem_id="facet-tab-dataset")
            with dataset_tab:
                dataset.build()
            models_tab = gr.Tab("Models", id="models", elem_id="facet-tab-models")
            with models_tab:
                models.build()
        review.wire(review_tab)
        dataset.wire(dataset_tab)
        models.wire(models_tab)

        def on_load(request: gr.Request) -> dict:
            actor = actor_of(studio, request)
            logout = " · [log out](/logout)" if actor.user_id is not None else ""
            return {
                whoami: f"**{actor.name}** ({actor.role.value}){logout}",
                notice: gr.update(value=OPEN_MODE_NOTICE, visible=actor.user_id is None),
                review_tab: gr.update(visible=True) if actor.can("review") else gr.update(),
                models.train_btn: gr.update(interactive=actor.can("train")),
                models.activate_btn: gr.update(interactive=actor.can("activate")),
            }

        blocks.load(shows_database_faults(studio, on_load), None,
                    [whoami, notice, review_tab, models.train_btn, models.activate_btn])
    return blocks
