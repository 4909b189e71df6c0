"""Training and fine-tuning of the parser, with optional self-distillation.

``train(samples, config, steps, ...)`` runs a fixed number of optimiser steps (or, with
``time_budget_s``, as many as fit in that many seconds, at most ``steps``) and returns the
model with its config and training metadata, ready for :func:`model.checkpoint.save_checkpoint`.
Progress goes to ``on_step(step, total, losses, rate)`` every step; an exception raised there
stops training (that is how the worker cancels a job).
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

from model.augment import AugmentConfig
from model.checkpoint import Checkpoint, load_checkpoint
from model.net import FaceParser, ParserConfig, build_face_parser
from model.dataset import BatchStream, Sample
from model.devices import amp_dtype, autocast, available_cores, resolve_device
from model.distill import Teacher, distillation_loss, trusted_pixels
from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.losses import LossConfig, ParsingLoss

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


def default_lr(optimizer: str = "adamw", fine_tune: bool = False) -> float:
    """2e-3 for AdamW, 2e-2 for SGD from scratch; a fifth of that when fine-tuning."""
    return (2e-3 if optimizer == "adamw" else 2e-2) * (0.2 if fine_tune else 1.0)


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


def _student(config: ParserConfig | None, init: Checkpoint | None,
             labels: LabelSet) -> tuple[nn.Module, ParserConfig]:
    """The model to train: a copy of ``init``'s model, or a fresh one built from ``config``."""
    if init is not None:
        if config is not None and config.replace(backbone_weights=None) != \
                init.config.replace(backbone_weights=None):
            raise FacetError("the --init checkpoint was built with a different config")
        return copy.deepcopy(init.model), init.config
    config = config or ParserConfig.small(labels)
    if config.num_classes != labels.num_classes:
        raise FacetError(f"config has {config.num_classes} classes, labels {labels.num_classes}")
    return build_face_parser(config), config


def _place(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _optimizer(name: str, params: list[nn.Parameter], lr: float, weight_decay: float,
               device: torch.device) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay,
                                 fused=device.type in ("cpu", "cuda"))
    return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)


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


def train(samples: Sequence[Sample], config: ParserConfig | None, steps: int, *,
          init: Source | None = None,
          teacher: Source | None = None,
          unlabeled: Sequence[np.ndarray] = (), device: str | torch.device = "cpu", seed: int = 0,
          batch_size: int = 8, lr: float | None = None, on_step: OnStep | None = None,
          distill_weight: float = 2.0, temperature: float = 2.0, ema_teacher: bool = False,
          ema_decay: float = 0.99, unlabeled_batch: int | None = None,
          distill_confidence: float | None = None,
          labels: LabelSet = CELEBAMASK, loss: LossConfig | None = None,
          augment: AugmentConfig | None = None, optimizer: str = "adamw",
          schedule: str = "cosine", warmup: int | None = None, weight_decay: float = 1e-4,
          clip_norm: float = 5.0, amp: bool = True, channels_last: bool = True,
          num_workers: int | None = None, time_budget_s: float | None = None) -> TrainResult:
    """Train for ``steps`` optimiser steps on ``samples`` (``(image H x W x 3 uint8, label H x W
    uint8)`` pairs, any sizes; resized to ``config.input_size``).

    ``init``: a checkpoint (loaded, a path, or a bare model) to start from; its config and label
    set are then used (``config`` may be ``None``; a different architecture is an error). ``teacher``: a frozen
    checkpoint for self-distillation; ``ema_teacher``: distil from an EMA of the student
    instead. With a teacher, the loss adds ``distill_weight * KL(teacher || student) * T^2``
    (weight 2 by default: at K = 8 it kept the original style within 1 point, 1 did not) on
    the labelled batch and on ``unlabeled_batch`` images (default ``batch_size``) drawn from
    ``unlabeled``. ``distill_confidence``: distil only at the pixels the teacher is sure of (top
    class probability at least this) and, on labelled images, right about
    (:func:`model.distill.trusted_pixels`); ``None`` distils every pixel. ``lr`` defaults to
    :func:`default_lr`: 2e-3 (AdamW) / 2e-2 (SGD) from scratch and a fifth of that when
    fine-tuning from ``init``; warm-up (a tenth of ``steps``, at most 100) then cosine decay
    by default.

    ``time_budget_s``: stop after that many seconds of training (data preparation not
    counted), or after ``steps`` steps if that comes first; warm-up and decay follow the
    clock (:func:`schedule_position`; the warm-up then lasts ``warmup / steps`` of the
    budget). ``on_step`` then gets the total the run is heading for at its current pace, and
    the metadata records the steps actually made. Such a run depends on the machine's speed
    and load, so it is not reproducible step for step; leave the budget out for that.
    """
    if steps < 1:
        raise FacetError(f"steps must be at least 1, got {steps}")
    if batch_size < 1:
        raise FacetError(f"batch size must be at least 1, got {batch_size}")
    if teacher is not None and ema_teacher:
        raise FacetError("choose a teacher checkpoint or an EMA teacher, not both")
    if len(unlabeled) and teacher is None and not ema_teacher:
        raise FacetError("unlabelled images are only used for distillation: give a teacher "
                         "(--distill-from) or an EMA teacher")
    if optimizer not in ("adamw", "sgd"):
        raise FacetError(f"unknown optimizer {optimizer!r}; use adamw or sgd")
    if time_budget_s is not None and not 0 < time_budget_s < math.inf:
        raise FacetError(f"the time budget must be a positive number of seconds, "
                         f"got {time_budget_s}")
    dev = resolve_device(device)
    seed_everything(seed)
    init_ckpt = _as_checkpoint(init, labels)
    if init_ckpt is not None:
        labels = init_ckpt.labels
    model, config = _student(config, init_ckpt, labels)
    model = _place(model, dev, channels_last).train()

    teacher_ckpt = _as_checkpoint(teacher, labels)
    distiller: Teacher | None = None
    if teacher_ckpt is not None:
        if teacher_ckpt.labels != labels:
            raise FacetError("the teacher checkpoint uses a different label set")
        distiller = Teacher(teacher_ckpt.model)
        distiller.model = _place(distiller.model, dev, channels_last)
    elif ema_teacher:
        distiller = Teacher.ema_of(model, ema_decay)

    loss_cfg = loss if loss is not None else LossConfig()
    criterion = ParsingLoss(loss_cfg, labels)
    aug = augment if augment is not None else AugmentConfig()
    n_unlab = (unlabeled_batch if unlabeled_batch is not None else batch_size) if len(unlabeled) else 0
    stream = BatchStream(samples, list(unlabeled), config.input_size, batch_size, n_unlab,
                         labels, aug, seed)
    workers = num_workers if num_workers is not None else (
        min(8, available_cores() - 1) if dev.type == "cuda" else 0)

    base_lr = lr if lr is not None else default_lr(optimizer, fine_tune=init_ckpt is not None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _optimizer(optimizer, params, base_lr, weight_decay, dev)
    warm = warmup if warmup is not None else min(100, steps // 10)
    scaler = torch.amp.GradScaler(
        "cuda", enabled=amp and dev.type == "cuda" and amp_dtype(dev) == torch.float16)

    start = time.perf_counter()
    images_seen = 0
    last: dict[str, float] = {}
    done = 0
    with _batches(stream, workers, pin=dev.type == "cuda") as batches:
        position = 0
        while position < steps:
            for group in opt.param_groups:
                group["lr"] = base_lr * lr_factor(position, steps, warm, schedule)
            batch = next(batches)
            x = _to_input(batch["images"], dev, channels_last)
            target = batch["targets"].to(dev, non_blocking=True).long()
            n_lab = x.shape[0]
            if "unlabeled" in batch:
                x = torch.cat([x, _to_input(batch["unlabeled"], dev, channels_last)])
            with autocast(dev, amp):
                out = model(x)
                total, terms = criterion({k: v[:n_lab] for k, v in out.items()}, target)
                if distiller is not None and distill_weight > 0:
                    soft = distiller.logits(x)
                    trust = None if distill_confidence is None else trusted_pixels(
                        soft, distill_confidence, target)
                    terms["distill"] = distillation_loss(out["logits"], soft, temperature, trust)
                    total = total + distill_weight * terms["distill"]
            if not torch.isfinite(total):
                raise FacetError(f"training diverged at step {done + 1} (loss {total.item()}); "
                                 "try a lower learning rate")
            opt.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
            scaler.step(opt)
            scaler.update()
            if distiller is not None:
                distiller.update(model)
            images_seen += x.shape[0]
            done += 1
            now = time.perf_counter() - start
            position = schedule_position(done, steps, now, time_budget_s)
            last = {k: float(v.detach()) for k, v in terms.items()}
            last["total"] = float(total.detach())
            if on_step is not None:
                heading = (done if position >= steps
                           else _heading_for(done, steps, now, time_budget_s))
                on_step(done, heading, dict(last), images_seen / max(now, 1e-9))
    elapsed = time.perf_counter() - start

    model = model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    meta = {
        "steps": done, "max_steps": steps, "time_budget_s": time_budget_s, "seed": seed,
        "batch_size": batch_size, "unlabeled_batch": n_unlab,
        "lr": base_lr, "optimizer": optimizer, "schedule": schedule, "warmup": warm,
        "weight_decay": weight_decay, "clip_norm": clip_norm, "amp": bool(amp),
        "device": str(dev), "channels_last": channels_last,
        "n_labelled": len(samples), "n_unlabeled": len(unlabeled),
        "loss": asdict(loss_cfg), "augment": asdict(aug),
        "distill": None if distiller is None else {
            "teacher": "ema" if teacher_ckpt is None else "checkpoint", "weight": distill_weight,
            "temperature": temperature, "confidence": distill_confidence,
            "ema_decay": ema_decay if teacher_ckpt is None else None},
        "init": None if init_ckpt is None else {"meta_steps": init_ckpt.meta.get("steps")},
        "final_losses": last, "seconds": round(elapsed, 3),
        "images_per_second": round(images_seen / max(elapsed, 1e-9), 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return TrainResult(model, config, meta, labels)


def _heading_for(done: int, steps: int, elapsed_s: float, time_budget_s: float | None) -> int:
    """The step count a run still under way will end with, as known after ``done`` steps (for
    progress bars): ``steps``, or with a budget the steps that fit in it at the pace so far
    (at least one more)."""
    if time_budget_s is None:
        return steps
    return max(done + 1, min(steps, math.ceil(done * time_budget_s / max(elapsed_s, 1e-9))))
