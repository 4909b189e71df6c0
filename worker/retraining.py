"""One retraining run, from a ``train`` job row to a published model version (MONAILabel's "train").

The steps, each with its own short database session (the run takes minutes; the web process
must keep writing meanwhile):

1. **start**: the job goes to ``running`` (with this process's host and pid, so a dead run can
   be told from a live one); the snapshot of labels, the validation split and the unlabelled
   images is fixed (:mod:`worker.snapshot`) and stored in the job's params; the run's
   training recipe is :meth:`model.recipe.TrainRecipe.for_device` with the ``FACET_*``
   options and the job's params over it (:func:`job_recipe`).
2. **score the active model** on the run's validation split (:func:`model.evaluate.evaluate`:
   mean and per-class F1): the bar the new model must reach, and whether the active model is
   good enough to teach (``FACET_DISTILL_MIN_F1``, default 0.5).
3. **train**: the student starts from the active model (or fresh when there is none, when
   the job asks ``{"fresh": true}``, or when the active model is a brought TorchScript / ONNX
   parser, :mod:`model.foreign`; a fresh trunk starts from ``FACET_BACKBONE_WEIGHTS`` when
   set); supervised losses on the labels, plus self-distillation
   from the active model (the frozen teacher) on labelled and unlabelled images when it is
   good enough to teach. A weaker active model is only the starting point, trained at the full
   learning rate: its soft targets would pull the student down (docs/BENCHMARKS.md, "Loop").
   GPU when torch sees one; on a CPU the run trains for ``FACET_TRAIN_SECONDS``. Progress rows
   (step, losses, rate) are written at most once per ``progress_interval_s`` for the UI's curve.
4. **checkpoint**: written atomically (temporary file + rename) as
   ``<models dir>/job-<job id>.pt``; nothing in the database points to it yet; then the new
   model is scored on the same validation split. A write that fails (the disk is full) leaves
   no file behind and fails the job with the reason ("no space left on device").
5. **publish**: in one transaction, a version row is added with the metrics
   (``baseline_mean_f1`` = the active model's score on that split) and becomes active only if
   its mean F1 is no worse; otherwise it stays inactive with a note. The job is finished.

A run killed anywhere before step 5 commits leaves at most an unreferenced checkpoint file;
the active model keeps serving, and the job is marked failed — by this code for exceptions,
timeouts and interrupts, by the next consumer start (:mod:`worker.consumer`) after a SIGKILL.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from core.imageio import decode_label_png, resize_image
from db.engine import session_scope
from db.images import read_image
from db.jobs import TRAIN_KIND, add_point, fail, finish, get_job, mark_running, set_progress
from db.models import Image, JobState, Revision
from db.settings import Settings
from db.versions import activate, active_version, add_version, checkpoint_file, get_version
from worker.options import WorkerOptions
from worker.snapshot import LabelledImage, Snapshot, take_snapshot

if TYPE_CHECKING:
    from model.checkpoint import Checkpoint
    from model.net import ParserConfig
    from model.recipe import TrainRecipe
    from model.train import TrainResult

log = logging.getLogger("facet.worker.retraining")

TRAIN_SHARE = 0.9
"""Share of the job's progress bar that training steps fill; evaluation and publishing the rest."""


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes"):
        return True
    if str(value).lower() in ("0", "false", "no"):
        return False
    raise ValueError(value)


_flag.__name__ = "bool"

JOB_OVERRIDES: dict[str, Any] = {"steps": int, "seconds": float, "lr": float,
                                 "batch_size": int, "seed": int,
                                 "distill_weight": float, "fresh": _flag}
"""Keys a ``train`` job's params may set to override :class:`WorkerOptions` for that run."""


@dataclass(frozen=True)
class RunResult:
    """What a run published. ``metrics`` as stored on the version row."""

    job_id: int
    version_id: int
    activated: bool
    metrics: dict[str, Any]
    note: str | None


@dataclass(frozen=True)
class Active:
    """The active version when the run started (ids and paths only)."""

    version_id: int
    checkpoint: Path


class ProgressWriter:
    """``on_step`` callback for :func:`model.train.train` that writes the job's curve.

    Writes a :class:`db.models.JobPoint` (``{"loss": total, …loss terms, "rate": images/s}``)
    and the job's progress
    at most once per ``interval_s`` seconds, and always for the last step. Raises
    :class:`FacetError` (stopping training) when the job is no longer running, e.g. it was
    marked failed by another process.
    """

    def __init__(self, sessions: sessionmaker[Session], job_id: int, interval_s: float) -> None:
        self.sessions = sessions
        self.job_id = job_id
        self.interval_s = interval_s
        self._last = float("-inf")
        self.points = 0

    def __call__(self, step: int, total: int, losses: dict[str, float], rate: float) -> None:
        now = time.monotonic()
        if step < total and now - self._last < self.interval_s:
            return
        self._last = now
        values = {k: float(v) for k, v in losses.items()}
        loss = values["loss"] = values.pop("total", float("nan"))
        values["rate"] = float(rate)
        with session_scope(self.sessions) as session:
            add_point(session, self.job_id, step, values)
            set_progress(session, self.job_id, TRAIN_SHARE * step / max(total, 1),
                         f"training: step {step}/{total}, loss {loss:.3f}, {rate:.1f} images/s")
        self.points += 1


def job_recipe(options: WorkerOptions, params: dict[str, Any],
               device: str = "cpu") -> tuple[TrainRecipe, bool]:
    """The run's recipe and whether it starts fresh: :meth:`WorkerOptions.recipe_for`,
    overridden by the job's params (:data:`JOB_OVERRIDES`)."""
    given: dict[str, Any] = {}
    for key, kind in JOB_OVERRIDES.items():
        if params.get(key) is not None:
            try:
                given[key] = kind(params[key])
            except (TypeError, ValueError):
                raise FacetError(f"job parameter {key}={params[key]!r} is not a {kind.__name__}") from None
    if given.get("steps", 1) < 1:
        raise FacetError(f"steps must be >= 1, got {given['steps']}")
    if given.get("seconds") is not None and not given["seconds"] >= 0:
        raise FacetError(f"seconds must be >= 0, got {given['seconds']}")
    recipe = options.recipe_for(device)
    changes = {k: given[k] for k in ("steps", "lr", "batch_size", "seed") if k in given}
    if "seconds" in given:
        changes["time_budget_s"] = given["seconds"] or None  # 0: no time limit
    if "distill_weight" in given:
        changes["distill"] = replace(recipe.distill, weight=given["distill_weight"])
    return recipe.replace(**changes), given.get("fresh", False)


def start_run(session: Session, settings: Settings, job_id: int, options: WorkerOptions,
              device: str = "cpu") -> tuple[Snapshot, Active | None, TrainRecipe, bool]:
    """Step 1: mark the job running, fix the snapshot; returns it, the active version, the
    run's recipe and whether it starts fresh (:func:`job_recipe`)."""
    job = get_job(session, job_id)
    if job.state not in (JobState.queued, JobState.running):
        raise FacetError(f"job {job_id} is {job.state.value}; only a queued job can run")
    if job.kind != TRAIN_KIND:
        raise FacetError(f"job {job_id} is a {job.kind} job, not a train job")
    recipe, fresh = job_recipe(options, dict(job.params or {}), device)
    mark_running(session, job_id)
    snapshot = take_snapshot(session, max_unlabeled=options.max_unlabeled,
                             states=options.label_states)
    current = active_version(session)
    active = None if current is None else Active(current.id, checkpoint_file(settings, current))
    job.params = {**(job.params or {}), "snapshot": snapshot.describe(),
                  "host": socket.gethostname(), "pid": os.getpid(),
                  "base_version_id": None if active is None else active.version_id}
    set_progress(session, job_id, 0.0,
                 f"loading {snapshot.num_labels} labels ({len(snapshot.val)} for validation) "
                 f"and {len(snapshot.unlabeled)} unlabelled images")
    return snapshot, active, recipe, fresh


def load_labelled(session: Session, settings: Settings, items: tuple[LabelledImage, ...],
                  num_classes: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(H x W x 3 uint8 image, H x W uint8 label)]`` at each image's label size."""
    out = []
    for item in items:
        image = session.get(Image, item.image_id)
        revision = session.get(Revision, item.revision_id)
        if image is None or revision is None:
            raise FacetError(f"image {item.image_id} or its revision vanished during the run")
        size = (image.label_width, image.label_height)
        label = decode_label_png(revision.label_png, num_classes, size)
        out.append((resize_image(read_image(settings, image), size), label))
    return out


def load_unlabeled(session: Session, settings: Settings, ids: tuple[int, ...]) -> list[np.ndarray]:
    """``H x W x 3`` uint8 images (at their label size) for self-distillation."""
    out = []
    for image_id in ids:
        image = session.get(Image, image_id)
        if image is not None:
            out.append(resize_image(read_image(settings, image),
                                    (image.label_width, image.label_height)))
    return out


def decide(new_mean_f1: float, baseline_mean_f1: float | None) -> tuple[bool, str | None]:
    """Activate when there is no active model or the new one is no worse on validation."""
    if baseline_mean_f1 is None:
        return True, None
    if new_mean_f1 >= baseline_mean_f1:
        return True, None
    return False, (f"not activated: validation mean F1 {new_mean_f1:.4f} is below the active "
                   f"model's {baseline_mean_f1:.4f} on the same split")


def run_training(sessions: sessionmaker[Session], settings: Settings, job_id: int,
                 options: WorkerOptions) -> RunResult:
    """Run the ``train`` job ``job_id`` to a published version (see the module docstring).

    Any exception (including a Huey timeout or an interrupt) marks the job failed with a
    one-line reason and is re-raised; nothing is published then.
    """
    try:
        return _run(sessions, settings, job_id, options)
    except BaseException as err:
        _mark_failed(sessions, job_id, err)
        raise


def _reason(err: BaseException) -> str:
    name = type(err).__name__
    if isinstance(err, KeyboardInterrupt):
        return "interrupted: the worker was stopped during the run"
    if name == "TaskTimeout":
        return (f"timed out ({err}); raise FACET_TRAIN_TIMEOUT or lower FACET_TRAIN_SECONDS / "
                "FACET_TRAIN_STEPS")
    text = str(err).splitlines()[0] if str(err) else ""
    return text if isinstance(err, FacetError) else f"{name}: {text}"


def _mark_failed(sessions: sessionmaker[Session], job_id: int, err: BaseException) -> None:
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        if job.state in (JobState.queued, JobState.running):
            fail(session, job_id, _reason(err))
    log.warning("training job %s failed: %s", job_id, _reason(err))


@dataclass(frozen=True)
class RunContext:
    """What every step of a started run needs: where to write, which job, the run's device,
    its fixed snapshot and the version that was active when it started."""

    sessions: sessionmaker[Session]
    settings: Settings
    job_id: int
    options: WorkerOptions
    device: str
    snapshot: Snapshot
    active: Active | None

    def progress(self, share: float, message: str) -> None:
        """Set the job's progress (0-1) and message in a short session of its own."""
        with session_scope(self.sessions) as session:
            set_progress(session, self.job_id, share, message)


@dataclass(frozen=True)
class RunData:
    """A run's models and images. ``active``: the active version's checkpoint (the bar, and
    the teacher when good enough); ``init``: where the student starts (``None``: fresh, from
    ``config``). ``samples``/``val``: ``[(H x W x 3 uint8 image, H x W uint8 label)]``."""

    active: Checkpoint | None
    init: Checkpoint | None
    config: ParserConfig
    samples: list[tuple[np.ndarray, np.ndarray]]
    val: list[tuple[np.ndarray, np.ndarray]]


def _run(sessions: sessionmaker[Session], settings: Settings, job_id: int,
         options: WorkerOptions) -> RunResult:
    started = time.monotonic()
    device = options.run_device()
    with session_scope(sessions) as session:
        snapshot, active, recipe, fresh = start_run(session, settings, job_id, options, device)
    ctx = RunContext(sessions, settings, job_id, options, device, snapshot, active)
    data = load_run_data(ctx, recipe, fresh)
    baseline = score_active(ctx, data)
    base_f1 = None if baseline is None else float(baseline["mean_f1"])
    recipe, distill = plan_distillation(options, recipe, base_f1, fine_tune=data.init is not None)
    result, n_unlabeled = train_student(ctx, data, recipe, distill)
    train_s = time.monotonic() - started
    ckpt, scores = checkpoint_and_score(ctx, result, data.val)
    metrics: dict[str, Any] = {
        "mean_f1": float(scores["mean_f1"]), "per_class_f1": _jsonable(scores.get("per_class_f1")),
        "baseline_mean_f1": base_f1,
        "baseline_per_class_f1": None if baseline is None else _jsonable(baseline.get("per_class_f1")),
        "baseline_version_id": None if active is None else active.version_id,
        "val_ids": [x.image_id for x in snapshot.val], "num_train": len(snapshot.train),
        "num_approved": snapshot.num_approved,
        "num_submitted": snapshot.num_labels - snapshot.num_approved,
        "only_approved": options.train_only_approved,
        "num_unlabeled": n_unlabeled, "steps": result.meta["steps"],
        "time_budget_s": recipe.time_budget_s, "distilled": distill,
        "init_version_id": active.version_id if active is not None and data.init is not None
        else None,
        "teacher_version_id": active.version_id if active is not None and distill else None,
        "device": device, "train_seconds": round(train_s, 2),
        "training_loop_seconds": result.meta["seconds"],
        "total_seconds": round(time.monotonic() - started, 2),
    }
    return publish(ctx, ckpt, result.config.to_dict(), metrics)


def load_run_data(ctx: RunContext, recipe: TrainRecipe, fresh: bool) -> RunData:
    """Load the active model (if any) and the snapshot's labelled images; the student starts
    from the active model unless the job asked for a ``fresh`` one, there is none, or it is a
    brought parser (``meta["foreign"]``, :mod:`model.foreign`: its architecture cannot be
    copied, but it can still teach). A fresh student's trunk starts from
    ``FACET_BACKBONE_WEIGHTS`` when set."""
    from core.labels import CELEBAMASK
    from model.checkpoint import load_checkpoint

    active = None if ctx.active is None else load_checkpoint(ctx.active.checkpoint)
    foreign = active is not None and "foreign" in active.meta
    init = active if active is not None and not fresh and not foreign else None
    weights = {} if ctx.options.backbone_weights is None else {
        "backbone_weights": ctx.options.backbone_weights}
    config = init.config if init is not None else recipe.fresh_config(
        ctx.options.train_config, CELEBAMASK, **weights)
    with session_scope(ctx.sessions) as session:
        samples = load_labelled(session, ctx.settings, ctx.snapshot.train, config.num_classes)
        val = load_labelled(session, ctx.settings, ctx.snapshot.val, config.num_classes)
    return RunData(active, init, config, samples, val)


def score_active(ctx: RunContext, data: RunData) -> dict[str, Any] | None:
    """Step 2: the active model's scores on this run's validation split (:func:`evaluate`):
    the bar to publish, and whether it is good enough to teach; ``None`` without one."""
    from model.evaluate import evaluate
    from model.inference import Predictor

    if data.active is None:
        return None
    ctx.progress(0.0, "scoring the active model on the validation split")
    model = data.active
    scores = evaluate(Predictor(model.model, model.config, model.labels, model.meta,
                                device=ctx.device), data.val)
    model.model.to("cpu")  # train() places its own copies
    return scores


def plan_distillation(options: WorkerOptions, recipe: TrainRecipe, base_f1: float | None,
                      fine_tune: bool) -> tuple[TrainRecipe, bool]:
    """Whether the active model (validation mean F1 ``base_f1``; ``None``: no model) teaches,
    and the recipe for that: a model below ``FACET_DISTILL_MIN_F1`` only gives the student its
    start, trained at the from-scratch learning rate (its soft targets would pull it down)."""
    from model.recipe import default_lr

    weak = base_f1 is not None and not options.teaches(base_f1)
    distill = base_f1 is not None and not weak and recipe.distill.weight > 0
    if recipe.lr is None and fine_tune and weak:
        recipe = recipe.replace(lr=default_lr(recipe.optimizer, fine_tune=False))
    return recipe, distill


def train_student(ctx: RunContext, data: RunData, recipe: TrainRecipe,
                  distill: bool) -> tuple[TrainResult, int]:
    """Step 3: train (writing the job's curve); with ``distill``, the active model teaches on
    the labelled and the snapshot's unlabelled images. Returns the
    :class:`model.train.TrainResult` and the number of unlabelled images used."""
    from model.train import train

    unlabeled: list[np.ndarray] = []
    if distill:
        with session_scope(ctx.sessions) as session:
            unlabeled = load_unlabeled(session, ctx.settings, ctx.snapshot.unlabeled)
    if unlabeled:
        recipe = recipe.with_loop_distillation(ctx.options.distill_batch)
    progress = ProgressWriter(ctx.sessions, ctx.job_id, ctx.options.progress_interval_s)
    result = train(data.samples, None if data.init is not None else data.config, recipe,
                   init=data.init, teacher=data.active if distill else None,
                   unlabeled=unlabeled, device=ctx.device, on_step=progress)
    return result, len(unlabeled)


def checkpoint_and_score(ctx: RunContext, result: TrainResult,
                         val: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Path, dict[str, Any]]:
    """Step 4: write ``<models dir>/job-<id>.pt`` (nothing points to it yet) and score it on
    the validation split."""
    from core.labels import CELEBAMASK
    from model.checkpoint import save_checkpoint
    from model.evaluate import evaluate
    from model.inference import Predictor

    snapshot, active = ctx.snapshot, ctx.active
    ckpt = ctx.settings.models_dir / f"job-{ctx.job_id}.pt"
    meta = {**dict(result.meta or {}), "job_id": ctx.job_id, "num_labels": snapshot.num_labels,
            "train_ids": [x.image_id for x in snapshot.train],
            "val_ids": [x.image_id for x in snapshot.val],
            "parent_version_id": None if active is None else active.version_id}
    try:
        save_checkpoint(ckpt, result.model, result.config, CELEBAMASK, meta)
    except OSError as err:  # e.g. the disk is full: the temporary file is gone already
        why = (err.strerror or str(err)).lower()
        raise FacetError(f"cannot write the checkpoint {ckpt.name}: {why}; the active model "
                         "keeps serving (free disk space and train again)") from None
    ctx.progress(TRAIN_SHARE, "evaluating on the validation split")
    predictor = Predictor.load(ckpt, device=ctx.device)
    return ckpt, evaluate(predictor, val)


def publish(ctx: RunContext, ckpt: Path, config: dict[str, Any],
            metrics: dict[str, Any]) -> RunResult:
    """Step 5, one transaction: add the version with ``metrics``; activate it when it is no
    worse than the model it was compared with and that model still serves; finish the job."""
    new_f1, base_f1 = metrics["mean_f1"], metrics["baseline_mean_f1"]
    activate_it, note = decide(new_f1, base_f1)
    compared_with = None if ctx.active is None else ctx.active.version_id
    with session_scope(ctx.sessions) as session:
        job = get_job(session, ctx.job_id)
        if job.state != JobState.running:  # e.g. failed by a restarted consumer meanwhile
            raise FacetError(f"job {ctx.job_id} is {job.state.value}; the run is not published")
        parent_id = None
        if compared_with is not None and get_version(session, compared_with) is not None:
            parent_id = compared_with
        now_active = active_version(session)
        if activate_it and (now_active.id if now_active is not None else None) != compared_with:
            # Someone activated another version (a rollback) during the run: this run was scored
            # against a model that no longer serves, so it must not override that decision.
            activate_it = False
            note = (f"kept inactive: version {now_active.id if now_active else 'none'} was "
                    f"activated during the run (compared with {compared_with or 'no model'})")
        version = add_version(session, ckpt.relative_to(ctx.settings.data_dir).as_posix(),
                              config, metrics, parent_id=parent_id, job_id=ctx.job_id,
                              num_labels=ctx.snapshot.num_labels, note=note)
        if activate_it:
            activate(session, version.id)
        finish(session, ctx.job_id,
               f"version {version.id}: validation mean F1 {new_f1:.3f}"
               + ("" if base_f1 is None else f" (active model {base_f1:.3f})")
               + ("; now active" if activate_it else f"; {note}"))
        version_id = version.id
    log.info("training job %s published version %s (mean F1 %.4f, baseline %s, active=%s)",
             ctx.job_id, version_id, new_f1, base_f1, activate_it)
    return RunResult(ctx.job_id, version_id, activate_it, metrics, note)


def _jsonable(value: Any) -> Any:
    """Numpy arrays and scalars → lists and floats (version metrics are JSON)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in list(value)]
    if isinstance(value, (np.floating, np.integer, float, int)):
        return float(value)
    return value
