"""Training and fine-tuning of the parser, with optional self-distillation.

``train(samples, config, recipe, ...)`` runs ``recipe.steps`` optimiser steps (or, with
``recipe.time_budget_s``, as many as fit in that many seconds, at most ``recipe.steps``) and
returns the model with its config and training metadata, ready for
:func:`model.checkpoint.save_checkpoint`. How to train (every default) is the
:class:`model.recipe.TrainRecipe`; this module is the loop. Progress goes to
``on_step(step, total, losses, rate)`` every step; an exception raised there stops training
(that is how the worker cancels a job).
"""
from __future__ import annotations

import contextlib
import copy
import math
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
from model.losses import ParsingLoss
from model.net import FaceParser, ParserConfig, build_face_parser
from model.recipe import TrainRecipe

OnStep = Callable[[int, int, dict[str, float], float], None]


@dataclass
class TrainResult:
    """The trained model (eval mode, on the CPU) and what a checkpoint needs beside it."""

    model: FaceParser
    config: ParserConfig
    meta: dict[str, Any] = field(default_factory=dict)
    labels: LabelSet = CELEBAMASK


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up over ``warmup`` steps,
    then ``"poly"`` (power 0.9), ``"cosine"`` or ``"constant"`` decay to the end."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "poly":
        return (1.0 - progress) ** 0.9
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}")


def schedule_position(step: int, steps: int, elapsed_s: float,
                      time_budget_s: float | None) -> int:
    """Where a run stands on its ``steps``-long learning-rate schedule after ``step`` steps.

    Without a budget that is ``step``. With ``time_budget_s`` it is the larger of ``step`` and
    the elapsed share of the budget times ``steps``: the schedule then follows the clock, so a
    run on a slow or busy machine still warms up, decays and ends on time, just with fewer
    steps. The run is over when the position reaches ``steps``.
    """
    if time_budget_s is None:
        return step
    return max(step, min(steps, int(steps * elapsed_s / time_budget_s)))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


Source = Checkpoint | nn.Module | str | os.PathLike
"""A model to start from or distil from: a loaded checkpoint, a checkpoint path, or a model
(a :class:`FaceParser`, or any module with a ``config`` attribute whose forward returns
``{"logits": ...}``, e.g. a baseline network in the benchmarks)."""


def _as_checkpoint(source: Source | None, labels: LabelSet) -> Checkpoint | None:
    if source is None or isinstance(source, Checkpoint):
        return source
    if isinstance(source, nn.Module):
        if not isinstance(getattr(source, "config", None), ParserConfig):
            raise FacetError("a model passed to train() needs a ParserConfig in .config")
        return Checkpoint(source, source.config, labels, {})
    return load_checkpoint(source)


def _to_input(batch: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = batch.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _student(config: ParserConfig | None, init: Checkpoint | None, labels: LabelSet,
             recipe: TrainRecipe) -> tuple[nn.Module, ParserConfig]:
    """The model to train: a copy of ``init``'s model, or a fresh one built from ``config``
    (default: the recipe's :meth:`~model.recipe.TrainRecipe.fresh_config`)."""
    if init is not None:
        if config is not None and config.replace(backbone_weights=None) != \
                init.config.replace(backbone_weights=None):
            raise FacetError("the --init checkpoint was built with a different config")
        return copy.deepcopy(init.model), init.config
    config = config or recipe.fresh_config("small", labels)
    if config.num_classes != labels.num_classes:
        raise FacetError(f"config has {config.num_classes} classes, labels {labels.num_classes}")
    return build_face_parser(config), config


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
def _batches(stream: BatchStream, workers: int, pin: bool) -> Iterator[Iterator[dict]]:
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
    distil = recipe.distill
    if teacher is not None and distil.ema_teacher:
        raise FacetError("choose a teacher checkpoint or an EMA teacher, not both")
    if len(unlabeled) and teacher is None and not distil.ema_teacher:
        raise FacetError("unlabelled images are only used for distillation: give a teacher "
                         "(--distill-from) or an EMA teacher")
    dev = resolve_device(device)
    seed_everything(recipe.seed)
    init_ckpt = _as_checkpoint(init, labels)
    if init_ckpt is not None:
        labels = init_ckpt.labels
    model, config = _student(config, init_ckpt, labels, recipe)
    recipe = recipe.resolved(fine_tune=init_ckpt is not None, unlabeled=bool(len(unlabeled)),
                             gpu=dev.type == "cuda")
    model = _place(model, dev, recipe.channels_last).train()

    teacher_ckpt = _as_checkpoint(teacher, labels)
    distiller: Teacher | None = None
    if teacher_ckpt is not None:
        if teacher_ckpt.labels != labels:
            raise FacetError("the teacher checkpoint uses a different label set")
        distiller = Teacher(teacher_ckpt.model)
        distiller.model = _place(distiller.model, dev, recipe.channels_last)
    elif distil.ema_teacher:
        distiller = Teacher.ema_of(model, distil.ema_decay)

    criterion = ParsingLoss(recipe.loss, labels)
    stream = BatchStream(samples, list(unlabeled), config.input_size, recipe.batch_size,
                         recipe.unlabeled_batch, labels, recipe.augment, recipe.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(recipe, params, dev)
    scaler = torch.amp.GradScaler(
        "cuda", enabled=recipe.amp and dev.type == "cuda" and amp_dtype(dev) == torch.float16)

    steps, budget = recipe.steps, recipe.time_budget_s
    start = time.perf_counter()
    images_seen = 0
    last: dict[str, float] = {}
    done = 0
    with _batches(stream, recipe.num_workers, pin=dev.type == "cuda") as batches:
        position = 0
        while position < steps:
            for group in opt.param_groups:
                group["lr"] = recipe.lr * lr_factor(position, steps, recipe.warmup,
                                                    recipe.schedule)
            batch = next(batches)
            x = _to_input(batch["images"], dev, recipe.channels_last)
            target = batch["targets"].to(dev, non_blocking=True).long()
            n_lab = x.shape[0]
            if "unlabeled" in batch:
                x = torch.cat([x, _to_input(batch["unlabeled"], dev, recipe.channels_last)])
            with autocast(dev, recipe.amp):
                out = model(x)
                total, terms = criterion({k: v[:n_lab] for k, v in out.items()}, target)
                if distiller is not None and distil.weight > 0:
                    soft = distiller.logits(x)
                    trust = None if distil.confidence is None else trusted_pixels(
                        soft, distil.confidence, target)
                    terms["distill"] = distillation_loss(out["logits"], soft, distil.temperature,
                                                         trust)
                    total = total + distil.weight * terms["distill"]
            if not torch.isfinite(total):
                raise FacetError(f"training diverged at step {done + 1} (loss {total.item()}); "
                                 "try a lower learning rate")
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, recipe.clip_norm)
            scaler.step(opt)
            scaler.update()
            if distiller is not None:
                distiller.update(model)
            images_seen += x.shape[0]
            done += 1
            now = time.perf_counter() - start
            position = schedule_position(done, steps, now, budget)
            last = {k: float(v.detach()) for k, v in terms.items()}
            last["total"] = float(total.detach())
            if on_step is not None:
                heading = done if position >= steps else _heading_for(done, steps, now, budget)
                on_step(done, heading, dict(last), images_seen / max(now, 1e-9))
    elapsed = time.perf_counter() - start

    model = model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    meta = {
        "recipe": asdict(recipe),
        "steps": done, "max_steps": steps, "lr": recipe.lr, "loss": asdict(recipe.loss),
        "device": str(dev), "n_labelled": len(samples), "n_unlabeled": len(unlabeled),
        "distill": None if distiller is None else {
            "teacher": "ema" if teacher_ckpt is None else "checkpoint", "weight": distil.weight,
            "temperature": distil.temperature, "confidence": distil.confidence,
            "ema_decay": distil.ema_decay if teacher_ckpt is None else None},
        "init": None if init_ckpt is None else {"meta_steps": init_ckpt.meta.get("steps")},
        "final_losses": last, "seconds": round(elapsed, 3),
        "images_per_second": round(images_seen / max(elapsed, 1e-9), 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return TrainResult(model, config, meta, labels)


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


def _heading_for(done: int, steps: int, elapsed_s: float, time_budget_s: float | None) -> int:
    """The step count a run still under way will end with, as known after ``done`` steps (for
    progress bars): ``steps``, or with a budget the steps that fit in it at the pace so far
    (at least one more)."""
    if time_budget_s is None:
        return steps
    return max(done + 1, min(steps, math.ceil(done * time_budget_s / max(elapsed_s, 1e-9))))
