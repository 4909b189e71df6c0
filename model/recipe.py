"""How the parser is trained: :class:`TrainRecipe`, the one home of every training default.

``train(samples, config, TrainRecipe(...))`` (:mod:`model.train`) takes one; the ``train``
command builds it from its flags, the worker from :meth:`TrainRecipe.for_device` and its
``FACET_*`` options, the benchmarks from their settings. The numbers below were measured;
docs/BENCHMARKS.md has the runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.augment import AugmentConfig
from model.devices import available_cores
from model.distill import DistillConfig
from model.losses import LossConfig
from model.net import ParserConfig

OPTIMIZERS: tuple[str, ...] = ("adamw", "sgd")
SCHEDULES: tuple[str, ...] = ("cosine", "poly", "constant")

CPU_STEPS = 5000
"""Most steps of a run on a CPU; the time budget (:data:`CPU_TRAIN_SECONDS`) ends it first."""
CPU_TRAIN_SECONDS = 150.0
"""Default training time of a run on a CPU: with the evaluation and publishing around it, a new
model is active within 5 minutes of the trigger on a 2-core box, however busy (the run makes
fewer steps when the box is loaded). docs/BENCHMARKS.md, "Loop"."""
CPU_TRAIN_SIZE = 160
"""Input side of a fresh model on a CPU: a step at 160 px costs ~40 % of one at 256 px, and with
the minutes a CPU run has, more steps beat more pixels; 160 px beat 128 px (small parts keep a
few pixels more). docs/BENCHMARKS.md, "Loop"."""
CPU_BATCH = 8
"""Images per step on a CPU (at 160 px)."""
GPU_STEPS = 1500
"""Default steps per run on a GPU: ~1 minute on an H100, held-out mean F1 > 0.5 after 8-16
synthetic labels (docs/BENCHMARKS.md, "Loop")."""
GPU_BATCH = 4
"""Images per step on a GPU (what its loop numbers used)."""
DISTILL_MIN_F1 = 0.5
"""A model teaches the next one only from this validation mean F1 up: distilling from a weaker
model pulled the CPU loop's students down (held-out F1 0.31-0.33 instead of 0.49 after 16
labels, docs/BENCHMARKS.md, "How the CPU defaults were chosen"). Below it, the model is only a
warm start, trained at the from-scratch learning rate."""


def default_lr(optimizer: str = "adamw", fine_tune: bool = False) -> float:
    """2e-3 for AdamW, 2e-2 for SGD from scratch; a fifth of that when fine-tuning."""
    return (2e-3 if optimizer == "adamw" else 2e-2) * (0.2 if fine_tune else 1.0)


@dataclass(frozen=True)
class TrainRecipe:
    """Everything about a training run except its data, its starting point and its device.

    Attributes:
        steps: optimiser steps (with ``time_budget_s``: at most this many).
        time_budget_s: stop after this many seconds of training (data preparation not
            counted); warm-up and decay then follow the clock. ``None``: no limit. Such a run
            depends on the machine's speed and load, so it is not reproducible step for step.
        batch_size: labelled images per step.
        unlabeled_batch: unlabelled images per step when a run has them; ``None``:
            ``batch_size``.
        lr: peak learning rate; ``None``: :func:`default_lr` for ``optimizer``, a fifth of it
            when fine-tuning from a checkpoint.
        optimizer: ``"adamw"`` or ``"sgd"`` (momentum 0.9, Nesterov).
        schedule: decay after warm-up: ``"cosine"``, ``"poly"`` (power 0.9) or ``"constant"``.
        warmup: linear warm-up steps; ``None``: a tenth of ``steps``, at most 100.
        weight_decay: decoupled (AdamW) or L2 (SGD) weight decay.
        clip_norm: gradients are clipped to this global L2 norm.
        amp: mixed precision (bfloat16, float16 on GPUs without it); off: float32.
        channels_last: NHWC memory layout for model and inputs.
        seed: seeds Python, numpy and torch, and the batch stream.
        distill: self-distillation settings (used only when the run has a teacher).
        loss: weights of the loss terms.
        augment: ranges of the random transforms.
        input_size: input side of a fresh model in pixels (a multiple of 32), see
            :meth:`fresh_config`; ``None``: the preset's. A run from a checkpoint keeps its.
        num_workers: DataLoader processes; ``None``: up to 8 on a GPU, none on a CPU.
    """

    steps: int = 2000
    time_budget_s: float | None = None
    batch_size: int = 8
    unlabeled_batch: int | None = None
    lr: float | None = None
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup: int | None = None
    weight_decay: float = 1e-4
    clip_norm: float = 5.0
    amp: bool = True
    channels_last: bool = True
    seed: int = 0
    distill: DistillConfig = field(default_factory=DistillConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    input_size: int | None = None
    num_workers: int | None = None

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise FacetError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise FacetError(f"batch size must be at least 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise FacetError(f"unknown optimizer {self.optimizer!r}; use adamw or sgd")
        if self.schedule not in SCHEDULES:
            raise FacetError(f"unknown schedule {self.schedule!r}; use {', '.join(SCHEDULES)}")
        if self.time_budget_s is not None and not 0 < self.time_budget_s < math.inf:
            raise FacetError(f"the time budget must be a positive number of seconds, "
                             f"got {self.time_budget_s}")

    @classmethod
    def for_device(cls, device: str, **overrides: Any) -> "TrainRecipe":
        """The background loop's defaults on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``…).

        CPU: :data:`CPU_STEPS` steps within :data:`CPU_TRAIN_SECONDS` s, :data:`CPU_BATCH`
        images of :data:`CPU_TRAIN_SIZE` px. GPU: :data:`GPU_STEPS` steps, no time limit,
        :data:`GPU_BATCH` images at the preset's size. ``overrides`` replace fields.
        """
        if device.startswith("cuda"):
            base = cls(steps=GPU_STEPS, batch_size=GPU_BATCH)
        else:
            base = cls(steps=CPU_STEPS, time_budget_s=CPU_TRAIN_SECONDS, batch_size=CPU_BATCH,
                       input_size=CPU_TRAIN_SIZE)
        return base.replace(**overrides)

    def replace(self, **changes: Any) -> "TrainRecipe":
        return replace(self, **changes)

    def with_loop_distillation(self, unlabeled_batch: int | None = None) -> "TrainRecipe":
        """The background loop's unlabelled batch when it distils: ``unlabeled_batch`` images
        per step (``FACET_DISTILL_BATCH``), by default half the labelled batch (at least 1)."""
        return self.replace(unlabeled_batch=unlabeled_batch or max(1, self.batch_size // 2))

    def fresh_config(self, preset: str = "small", labels: LabelSet = CELEBAMASK,
                     **overrides: Any) -> ParserConfig:
        """The :class:`ParserConfig` of a fresh model: ``preset`` at :attr:`input_size`."""
        if self.input_size is not None:
            overrides = {"input_size": self.input_size, **overrides}
        return ParserConfig.preset(preset, labels, **overrides)

    def resolved(self, *, fine_tune: bool, unlabeled: bool, gpu: bool) -> "TrainRecipe":
        """This recipe with every ``None`` that a run decides filled in: ``lr`` (by optimizer
        and ``fine_tune``), ``warmup``, ``unlabeled_batch`` (0 when the run has no
        ``unlabeled`` images) and ``num_workers`` (by ``gpu``)."""
        return self.replace(
            lr=self.lr if self.lr is not None else default_lr(self.optimizer, fine_tune),
            warmup=self.warmup if self.warmup is not None else min(100, self.steps // 10),
            unlabeled_batch=(self.unlabeled_batch if self.unlabeled_batch is not None
                             else self.batch_size) if unlabeled else 0,
            num_workers=self.num_workers if self.num_workers is not None else (
                min(8, available_cores() - 1) if gpu else 0))
