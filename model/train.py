"""Training and fine-tuning of the parser, with optional self-distillation.

``train(samples, config, recipe, ...)`` runs ``recipe.steps`` optimiser steps (or, with
``recipe.time_budget_s``, as many as fit in that many seconds, at most ``recipe.steps``) and
returns the model with its config and training metadata, ready for
:func:`model.checkpoint.save_checkpoint`. How to train (every default) is the
:class:`model.recipe.TrainRecipe`; the learning-rate schedule is :mod:`model.schedule`; this
module is the loop: set up the student, its teacher and optimiser (:func:`prepare`), run the
steps (:func:`run_steps`, one :func:`train_step` each), describe the run (:func:`run_metadata`).
Progress goes to ``on_step(step, total, losses, rate)`` every step; an exception raised there
stops training (that is how the worker cancels a job).
"""
from __future__ import annotations

import contextlib
import copy
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.checkpoint import Checkpoint, load_checkpoint
from model.dataset import BatchStream, Sample
from model.devices import amp_dtype, autocast, resolve_device
from model.distill import Teacher, distillation_loss, trusted_pixels
from model.foreign import is_foreign
from model.losses import ParsingLoss
from model.net import FaceParser, ParserConfig, build_face_parser, can_grow, grow_face_parser
from model.recipe import TrainRecipe
from model.schedule import heading_for, lr_factor, schedule_position

OnStep = Callable[[int, int, dict[str, float], float], None]
"""``on_step(step, total, losses, images_per_second)`` after every step (1-based ``step``)."""

Source = Checkpoint | nn.Module | str | os.PathLike
"""A model to start from or distil from: a loaded checkpoint, a checkpoint path, or a model
(a :class:`FaceParser`, or any module with a ``config`` attribute whose forward returns
``{"logits": ...}``, e.g. a baseline network in the benchmarks)."""


@dataclass
class TrainResult:
    """The trained model (eval mode, on the CPU) and what a checkpoint needs beside it."""

    model: FaceParser
    config: ParserConfig
    meta: dict[str, Any] = field(default_factory=dict)
    labels: LabelSet = CELEBAMASK


@dataclass
class Setup:
    """Everything a run's steps use, built once by :func:`prepare`.

    ``recipe`` is resolved (:meth:`TrainRecipe.resolved`: the learning rate, warm-up and batch
    sizes actually used). ``teacher`` is ``None`` without distillation; ``teacher_kind`` says
    where it came from (``"checkpoint"`` or ``"ema"``).
    """

    model: nn.Module
    config: ParserConfig
    labels: LabelSet
    recipe: TrainRecipe
    device: torch.device
    criterion: ParsingLoss
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    init: Checkpoint | None
    teacher: Teacher | None
    teacher_kind: str | None


@dataclass
class Progress:
    """What the steps made: ``steps`` done, ``images`` seen (labelled and unlabelled),
    ``seconds`` of training, and the ``losses`` of the last step (with ``"total"``)."""

    steps: int = 0
    images: int = 0
    seconds: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(samples: Sequence[Sample], config: ParserConfig | None, recipe: TrainRecipe, *,
          init: Source | None = None, teacher: Source | None = None,
          unlabeled: Sequence[np.ndarray] = (), device: str | torch.device = "cpu",
          on_step: OnStep | None = None, labels: LabelSet = CELEBAMASK) -> TrainResult:
    """Train on ``samples`` (``(image H x W x 3 uint8, label H x W uint8)`` pairs, any sizes;
    resized to ``config.input_size``) as ``recipe`` says.

    ``config``: the architecture of a fresh model; ``None``: ``recipe.fresh_config()``.
    ``init``: a checkpoint (loaded, a path, or a bare model) to start from; its config and
    label set are then used (``config`` may be ``None``; a different architecture is an
    error). ``teacher``: a frozen checkpoint for self-distillation (or
    ``recipe.distill.ema_teacher``: distil from an EMA of the student); the loss then adds
    ``recipe.distill.weight * KL(teacher || student) * T^2`` on the labelled batch and on
    ``recipe.unlabeled_batch`` images drawn from ``unlabeled``.

    With ``recipe.time_budget_s``, ``on_step`` gets the total the run is heading for at its
    current pace, and the metadata records the steps actually made. The metadata holds the
    recipe (resolved: the learning rate, warm-up and batch sizes used) under ``"recipe"``,
    and what happened: ``steps``, ``seconds``, ``images_per_second``, ``final_losses``, …
    """
    setup = prepare(samples, config, recipe, init=init, teacher=teacher,
                    unlabeled=len(unlabeled) > 0, device=device, labels=labels)
    r = setup.recipe
    stream = BatchStream(samples, list(unlabeled), setup.config.input_size, r.batch_size,
                         r.unlabeled_batch, setup.labels, r.augment, r.seed)
    progress = run_steps(setup, stream, on_step)
    model = setup.model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    meta = run_metadata(setup, progress, n_labelled=len(samples), n_unlabeled=len(unlabeled))
    return TrainResult(model, setup.config, meta, setup.labels)


def train_steps(samples: Sequence[Sample], config: ParserConfig | None, steps: int, *,
                init: Source | None = None, teacher: Source | None = None,
                unlabeled: Sequence[np.ndarray] = (), device: str | torch.device = "cpu",
                on_step: OnStep | None = None, labels: LabelSet = CELEBAMASK,
                **recipe: Any) -> TrainResult:
    """:func:`train` with the recipe as keywords over the :class:`TrainRecipe` defaults, for
    scripts and tests: ``train_steps(samples, config, 40, batch_size=4)`` is
    ``train(samples, config, TrainRecipe(steps=40, batch_size=4))``."""
    return train(samples, config, TrainRecipe(steps=steps, **recipe), init=init,
                 teacher=teacher, unlabeled=unlabeled, device=device, on_step=on_step,
                 labels=labels)


def prepare(samples: Sequence[Sample], config: ParserConfig | None, recipe: TrainRecipe, *,
            init: Source | None, teacher: Source | None, unlabeled: bool,
            device: str | torch.device, labels: LabelSet) -> Setup:
    """Seed, build the student (from ``init`` or ``config``), its teacher, the loss and the
    optimiser on ``device``; ``unlabeled``: whether the run has unlabelled images."""
    if teacher is not None and recipe.distill.ema_teacher:
        raise FacetError("choose a teacher checkpoint or an EMA teacher, not both")
    if unlabeled and teacher is None and not recipe.distill.ema_teacher:
        raise FacetError("unlabelled images are only used for distillation: give a teacher "
                         "(--distill-from) or an EMA teacher")
    dev = resolve_device(device)
    seed_everything(recipe.seed)
    init_ckpt = _as_checkpoint(init, labels)
    if init_ckpt is not None:
        labels = init_ckpt.labels
    model, config = _student(config, init_ckpt, labels, recipe)
    recipe = recipe.resolved(fine_tune=init_ckpt is not None, unlabeled=unlabeled,
                             gpu=dev.type == "cuda")
    model = _place(model, dev, recipe.channels_last).train()
    distiller, kind = _teacher(_as_checkpoint(teacher, labels), model, recipe, labels, dev)
    params = [p for p in model.parameters() if p.requires_grad]
    scaler = torch.amp.GradScaler(
        "cuda", enabled=recipe.amp and dev.type == "cuda" and amp_dtype(dev) == torch.float16)
    return Setup(model, config, labels, recipe, dev, ParsingLoss(recipe.loss, labels), params,
                 _optimizer(recipe, params, dev), scaler, init_ckpt, distiller, kind)


def run_steps(setup: Setup, stream: BatchStream, on_step: OnStep | None) -> Progress:
    """Step until the schedule's position (:func:`model.schedule.schedule_position`) reaches
    the recipe's steps, calling ``on_step`` after each."""
    r = setup.recipe
    progress = Progress()
    start = time.perf_counter()
    with iterate_batches(stream, r.num_workers, pin=setup.device.type == "cuda") as batches:
        position = 0
        while position < r.steps:
            for group in setup.optimizer.param_groups:
                group["lr"] = r.lr * lr_factor(position, r.steps, r.warmup, r.schedule)
            progress.losses, images = train_step(setup, next(batches), progress.steps + 1)
            progress.images += images
            progress.steps += 1
            now = time.perf_counter() - start
            position = schedule_position(progress.steps, r.steps, now, r.time_budget_s)
            if on_step is not None:
                heading = progress.steps if position >= r.steps else heading_for(
                    progress.steps, r.steps, now, r.time_budget_s)
                on_step(progress.steps, heading, dict(progress.losses),
                        progress.images / max(now, 1e-9))
    progress.seconds = time.perf_counter() - start
    return progress


def train_step(setup: Setup, batch: dict[str, torch.Tensor],
               step: int) -> tuple[dict[str, float], int]:
    """One optimiser step (the ``step``-th) on ``batch`` (``"images"``: ``B x 3 x H x W``
    uint8, ``"targets"``: ``B x H x W``, optionally ``"unlabeled"``: ``U x 3 x H x W``).
    Returns the loss terms as floats (with ``"total"``) and the number of images used."""
    r, dev = setup.recipe, setup.device
    x = _to_input(batch["images"], dev, r.channels_last)
    target = batch["targets"].to(dev, non_blocking=True).long()
    if "unlabeled" in batch:
        x = torch.cat([x, _to_input(batch["unlabeled"], dev, r.channels_last)])
    with autocast(dev, r.amp):
        total, terms = _loss(setup, x, target)
    if not torch.isfinite(total):
        raise FacetError(f"training diverged at step {step} (loss {total.item()}); "
                         "try a lower learning rate")
    opt, scaler = setup.optimizer, setup.scaler
    opt.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_(setup.params, r.clip_norm)
    scaler.step(opt)
    scaler.update()
    if setup.teacher is not None:
        setup.teacher.update(setup.model)
    losses = {k: float(v.detach()) for k, v in terms.items()}
    losses["total"] = float(total.detach())
    return losses, x.shape[0]


def _loss(setup: Setup, x: torch.Tensor,
          target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The student's loss on ``x`` (``target.shape[0]`` labelled images first, then the
    unlabelled ones): the parsing loss on the labelled part, plus the weighted distillation
    term on all of it when there is a teacher."""
    out = setup.model(x)
    n_lab = target.shape[0]
    total, terms = setup.criterion({k: v[:n_lab] for k, v in out.items()}, target)
    distil = setup.recipe.distill
    if setup.teacher is not None and distil.weight > 0:
        soft = setup.teacher.logits(x)
        trust = None if distil.confidence is None else trusted_pixels(
            soft, distil.confidence, target)
        terms["distill"] = distillation_loss(out["logits"], soft, distil.temperature, trust)
        total = total + distil.weight * terms["distill"]
    return total, terms


def run_metadata(setup: Setup, progress: Progress, n_labelled: int,
                 n_unlabeled: int) -> dict[str, Any]:
    """The checkpoint metadata of a finished run: the resolved recipe whole (``"recipe"``, its
    ``input_size`` the model's), the same settings flat as before the recipe existed, and what
    happened. ``steps`` are the steps made (``max_steps``: the recipe's), ``lr`` the peak
    learning rate used, ``distill`` ``None`` when nothing was distilled, ``logit_adjustment``
    the strength ``init`` recorded (:mod:`model.calibration`; ``None``: the default)."""
    r, distil = setup.recipe, setup.recipe.distill
    ema = setup.teacher_kind == "ema"
    return {
        "recipe": asdict(r.replace(input_size=setup.config.input_size)),
        # the run's settings also at the top level, where checkpoints before the recipe kept them
        "time_budget_s": r.time_budget_s, "seed": r.seed, "batch_size": r.batch_size,
        "unlabeled_batch": r.unlabeled_batch, "optimizer": r.optimizer, "schedule": r.schedule,
        "warmup": r.warmup, "weight_decay": r.weight_decay, "clip_norm": r.clip_norm,
        "amp": bool(r.amp), "channels_last": r.channels_last, "augment": asdict(r.augment),
        "steps": progress.steps, "max_steps": r.steps, "lr": r.lr, "loss": asdict(r.loss),
        "device": str(setup.device), "n_labelled": n_labelled, "n_unlabeled": n_unlabeled,
        "distill": None if setup.teacher is None else {
            "teacher": setup.teacher_kind, "weight": distil.weight,
            "temperature": distil.temperature, "confidence": distil.confidence,
            "ema_decay": distil.ema_decay if ema else None},
        "init": None if setup.init is None else {"meta_steps": setup.init.meta.get("steps")},
        # a run from a checkpoint predicts as sure as it did (model.calibration)
        "logit_adjustment": None if setup.init is None else setup.init.meta.get("logit_adjustment"),
        "final_losses": progress.losses, "seconds": round(progress.seconds, 3),
        "images_per_second": round(progress.images / max(progress.seconds, 1e-9), 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _as_checkpoint(source: Source | None, labels: LabelSet) -> Checkpoint | None:
    if source is None or isinstance(source, Checkpoint):
        return source
    if isinstance(source, nn.Module):
        if not isinstance(getattr(source, "config", None), ParserConfig):
            raise FacetError("a model passed to train() needs a ParserConfig in .config")
        return Checkpoint(source, source.config, labels, {})
    return load_checkpoint(source)


def _to_input(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """``B x 3 x H x W`` uint8 → float in [0, 1] on ``device``."""
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _student(config: ParserConfig | None, init: Checkpoint | None, labels: LabelSet,
             recipe: TrainRecipe) -> tuple[nn.Module, ParserConfig]:
    """The model to train: a copy of ``init``'s model (grown when ``config`` adds heads to
    ``init``'s, :func:`model.net.can_grow`), or a fresh one built from ``config`` (default: the
    recipe's :meth:`~model.recipe.TrainRecipe.fresh_config`)."""
    if init is not None:
        if is_foreign(init.model):
            raise FacetError("a brought (TorchScript / ONNX) parser cannot be the starting point "
                             "of training, Facet cannot copy its architecture: train a fresh "
                             "student and let it teach (--distill-from)")
        if config is not None and config.replace(backbone_weights=None) != \
                init.config.replace(backbone_weights=None):
            if can_grow(init.config, config):
                return grow_face_parser(init.model, config), config
            raise FacetError("the --init checkpoint was built with a different config")
        return copy.deepcopy(init.model), init.config
    config = config or recipe.fresh_config("small", labels)
    if config.num_classes != labels.num_classes:
        raise FacetError(f"config has {config.num_classes} classes, labels {labels.num_classes}")
    return build_face_parser(config), config


def _teacher(checkpoint: Checkpoint | None, student: nn.Module, recipe: TrainRecipe,
             labels: LabelSet, device: torch.device) -> tuple[Teacher | None, str | None]:
    """The run's teacher and its kind: a frozen copy of ``checkpoint`` (a Facet parser or a
    brought :class:`model.foreign.ForeignParser`: anything whose forward returns
    ``{"logits": ...}`` in the run's label order), an EMA of ``student``
    (``recipe.distill.ema_teacher``), or none."""
    if checkpoint is not None:
        if checkpoint.labels != labels:
            raise FacetError("the teacher checkpoint uses a different label set")
        teacher = Teacher(checkpoint.model)
        teacher.model = _place(teacher.model, device, recipe.channels_last)
        return teacher, "checkpoint"
    if recipe.distill.ema_teacher:
        return Teacher.ema_of(student, recipe.distill.ema_decay), "ema"
    return None, None


def _place(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _optimizer(recipe: TrainRecipe, params: list[nn.Parameter],
               device: torch.device) -> torch.optim.Optimizer:
    """The recipe's optimiser at its (resolved) peak learning rate."""
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    return torch.optim.SGD(params, lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay,
                           nesterov=True)


@contextlib.contextmanager
def iterate_batches(stream: BatchStream, workers: int, pin: bool) -> Iterator[Iterator[dict]]:
    """Endless batches from ``stream``; DataLoader worker processes end with the block, also
    when training stops with an exception."""
    loader = DataLoader(stream, batch_size=None, num_workers=workers, pin_memory=pin,
                        prefetch_factor=4 if workers else None)
    it = iter(loader)
    try:
        yield it
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)  # multi-process iterators only
        if shutdown is not None:
            shutdown()
