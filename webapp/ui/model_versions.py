"""The Models view: versions with validation F1 (per class as a chart), the running training
job's loss curve, "train now" (reviewers), activate / roll back (admins) — the last two
through :mod:`webapp.actions`."""
from functools import partial

import gradio as gr

from core.errors import FacetError
from db.jobs import TRAIN_KIND, job_points, latest_job
from db.models import JobState
from db.versions import get_version, list_versions
from webapp.actions import NoWorkerError, TrainingPendingError, activate_version, queue_training
from webapp.studio import Studio
from webapp.ui import charts
from webapp.ui.common import actor_of, fail, info, ok, shows_database_faults, warn

VERSION_COLUMNS = ["version", "active", "mean F1 (val)", "labels", "trained from", "created (UTC)",
                   "note"]


def labels_used(version) -> str:
    """How many labels a version trained on, and how many of them a reviewer had approved
    (versions trained before this was recorded: the count alone)."""
    approved = (version.metrics or {}).get("num_approved")
    if approved is None:
        return str(version.num_labels)
    return f"{version.num_labels} ({approved} approved)"


def trained_from(metrics: dict | None) -> str:
    """How a version was trained, from its metrics: the version it started from and the one
    it distilled from (self-distillation), or "fresh"; "–" for a version not trained here."""
    metrics = metrics or {}
    if "init_version_id" not in metrics and "teacher_version_id" not in metrics:
        return "–"
    init, teacher = metrics.get("init_version_id"), metrics.get("teacher_version_id")
    start = f"v{init}" if init is not None else "fresh"
    if teacher is not None:
        return f"{start}, distilled from v{teacher}"
    return f"{start}, no distillation"


def _f1(metrics: dict) -> str:
    f1 = (metrics or {}).get("mean_f1")
    return f"{f1:.3f}" if f1 is not None else "–"


class ModelsView:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def build(self) -> None:
        self.active_line = gr.Markdown("", elem_id="facet-models-active")
        self.versions = gr.Dataframe(headers=VERSION_COLUMNS, interactive=False,
                                     label="Model versions", elem_id="facet-versions")
        with gr.Row():
            self.choice = gr.Dropdown([], label="Version", scale=2, elem_id="facet-version-choice")
            self.activate_btn = gr.Button("Activate (promote / roll back)", scale=1,
                                          elem_id="facet-activate")
        order = list(self.studio.labels.names[1:])
        self.f1_plot = gr.BarPlot(None, x="class", y="F1", sort=order,
                                  title="Per-class validation F1 of the chosen version "
                                  "(a missing bar: F1 0)", height=300, y_lim=[0, 1],
                                  elem_id="facet-f1")
        with gr.Row():
            self.job_line = gr.Markdown("", elem_id="facet-job")
            self.train_btn = gr.Button("Train now", variant="primary", scale=0, elem_id="facet-train")
        self.loss_plot = gr.LinePlot(None, x="step",
                                     y="value", color="term", title="Training loss (latest job)",
                                     height=300, elem_id="facet-loss")
        self.status = gr.Markdown("", elem_id="facet-models-status")
        self.timer = gr.Timer(5.0, active=False)

    @property
    def outputs(self) -> list:
        return [self.active_line, self.versions, self.choice, self.f1_plot, self.job_line,
                self.loss_plot, self.status, self.timer]

    def _f1_frame(self, version_id: int | None):
        with self.studio.session() as session:
            version = get_version(session, version_id) if version_id else None
            per_class = dict((version.metrics or {}).get("per_class_f1") or {}) if version else {}
        return charts.frame([(n, round(float(per_class[n]), 4)) for n in self.studio.labels.names[1:]
                             if per_class.get(n) is not None], charts.F1)

    def _job(self) -> dict:
        with self.studio.session() as session:
            job = latest_job(session, TRAIN_KIND)
            if job is None:
                line = "No training job yet."
                frame = charts.frame([], charts.LOSS)
                return {self.job_line: line, self.loss_plot: frame, self.timer: gr.Timer(active=False)}
            points = job_points(session, job.id)
            rows = [(p.step, float(v), k) for p in points for k, v in p.values.items()
                    if k in ("loss", "ce", "edge", "kd")]
            running = job.state in (JobState.queued, JobState.running)
            line = f"Job {job.id}: **{job.state.value}**, {100 * job.progress:.0f} %"
            if job.message:
                line += f" — {job.message}"
            if job.error:
                line += f"  \n✗ {job.error}"
        frame = charts.frame(rows, charts.LOSS)
        return {self.job_line: line, self.loss_plot: frame, self.timer: gr.Timer(active=running)}

    def refresh(self, request: gr.Request, message: str = "", keep: str | None = None) -> dict:
        actor_of(self.studio, request).require("view")
        with self.studio.session() as session:
            versions = list_versions(session)
            rows = [[v.id, "✔" if v.is_active else "", _f1(v.metrics), labels_used(v),
                     trained_from(v.metrics), v.created_at.strftime("%Y-%m-%d %H:%M"),
                     v.note or ""] for v in versions]
            active = next((v for v in versions if v.is_active), None)
            choices = [(f"v{v.id} · F1 {_f1(v.metrics)}" + (" (active)" if v.is_active else ""),
                        str(v.id)) for v in versions]
            line = (f"Active: **model v{active.id}**, validation mean F1 {_f1(active.metrics)}, "
                    f"trained on {active.num_labels} labelled images." if active else
                    "No active model yet: pre-annotations start empty. Approve some labels, then "
                    "**Train now**.")
        ids = [c[1] for c in choices]
        pick = keep if keep in ids else (str(active.id) if active else (ids[0] if ids else None))
        out = {self.active_line: line, self.versions: rows,
               self.choice: gr.update(choices=choices, value=pick),
               self.f1_plot: self._f1_frame(int(pick) if pick else None), self.status: message}
        out.update(self._job())
        return out

    def on_refresh(self, request: gr.Request) -> dict:
        try:
            return self.refresh(request)
        except FacetError as err:
            return {self.status: fail(str(err))}

    def on_choice(self, choice: str | None) -> dict:
        return {self.f1_plot: self._f1_frame(int(choice) if choice else None)}

    def on_tick(self) -> dict:
        return self._job()

    def on_train(self, request: gr.Request) -> dict:
        try:
            actor = actor_of(self.studio, request)
            try:
                job_id = queue_training(self.studio, actor, "ui")
            except NoWorkerError:
                return {self.status: warn("No background worker in this server (started with "
                                          "--no-worker or without a queue): training cannot run "
                                          "here. Run `python app.py serve` without --no-worker.")}
            except TrainingPendingError as err:
                return {self.status: info(f"Training job {err.job_id} is already running or queued.")}
            return self.refresh(request, ok(f"Training job {job_id} queued."))
        except FacetError as err:
            return {self.status: fail(str(err))}

    def on_activate(self, choice: str | None, request: gr.Request) -> dict:
        try:
            actor = actor_of(self.studio, request).require("activate")
            if not choice:
                return {self.status: info("Pick a version first.")}
            activate_version(self.studio, actor, int(choice))
            return self.refresh(request, ok(f"Model v{choice} is now active; new pre-annotations "
                                            "come from it."), keep=choice)
        except FacetError as err:
            return {self.status: fail(str(err))}

    def wire(self, tab: gr.Tab) -> None:
        guard = partial(shows_database_faults, self.studio)
        tab.select(guard(self.on_refresh), None, self.outputs, show_progress="hidden")
        self.choice.input(guard(self.on_choice), [self.choice], [self.f1_plot])
        self.train_btn.click(guard(self.on_train), None, self.outputs)
        self.activate_btn.click(guard(self.on_activate), [self.choice], self.outputs)
        quiet_tick = guard(self.on_tick, quietly=lambda words: {self.job_line: words})
        self.timer.tick(quiet_tick, None, [self.job_line, self.loss_plot, self.timer],
                        show_progress="hidden")
