"""What the worker reads from the environment, resolved once into a frozen dataclass.

Locations come from :class:`db.settings.Settings`; everything the loop tunes comes from here.
The consumer entry and the web process build one with :meth:`WorkerOptions.from_env` and pass
it down; no module reads ``os.environ`` on its own. Unset training variables keep the
defaults of :meth:`model.recipe.TrainRecipe.for_device` (the numbers, and why, live there);
:meth:`WorkerOptions.recipe_for` applies the set ones over them.

========================== ========= ==========================================================
variable                   default   meaning
========================== ========= ==========================================================
FACET_RETRAIN_EVERY        10        retrain by itself after this many newly submitted/approved
                                     labels (0: only when asked from the UI/API)
FACET_TRAIN_ONLY_APPROVED  0         1: train only on approved (reviewed) labels; submitted ones
                                     wait for a reviewer (and count as new labels once approved)
FACET_TRAIN_STEPS          5000|1500 most optimiser steps of one retraining run
FACET_TRAIN_SECONDS        150 | 0   training time of one run in seconds; the run makes as many
                                     steps as fit (at most FACET_TRAIN_STEPS) and its learning-
                                     rate schedule follows the clock. Default: 150 on a CPU (a
                                     new model within 5 min on 2 cores), 0 (no limit) on a GPU
FACET_TRAIN_BATCH          8 | 4     images per step (8 on a CPU, 4 on a GPU)
FACET_TRAIN_LR             (model)   learning rate; empty = model.recipe's default
FACET_TRAIN_CONFIG         small     preset of a fresh model (``small`` | ``paper``)
FACET_TRAIN_SIZE           160|preset input side of a fresh model in pixels (multiple of
                                     32; default 160 on a CPU, the preset's on a GPU)
FACET_BACKBONE_WEIGHTS     (none)    local torchvision state dict (.pth) of the preset's trunk
                                     (resnet18 for ``small``, mobilenet_v3_large for ``mobile``)
                                     that a fresh model's backbone starts from; nothing is
                                     downloaded. Read when a run builds a fresh model
FACET_TRAIN_TIMEOUT        3600      seconds before a run is stopped (process workers only)
FACET_DISTILL_WEIGHT       (model)   weight of the self-distillation term (0: none)
FACET_DISTILL_MIN_F1       0.5       the active model teaches only when its mean F1 on this
                                     run's validation split is at least this (0: always)
FACET_DISTILL_MAX_UNLABELED 64       unlabelled images used for distillation per run
FACET_DISTILL_BATCH        (half)    unlabelled images per step (default: half the batch, >= 1)
FACET_TRAIN_LOADER_WORKERS (recipe)  data-loading processes per run (model/recipe.py: 0 on CPU)
FACET_DEVICE               auto      ``auto`` (cuda when available), ``cpu`` or ``cuda``
FACET_TORCH_THREADS        (cores)   torch intra-op threads in each worker process (default:
                                     every core, at most 8)
FACET_SAM_CHECKPOINT       (none)    SAM checkpoint for embeddings when a task gets none
FACET_SAM_MODEL            vit_b     SAM model type for that checkpoint
FACET_WORKERS              2         consumer worker processes
========================== ========= ==========================================================
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.errors import FacetError
from db.models import RevisionState
from worker.snapshot import APPROVED_ONLY, LABELLED_STATES

if TYPE_CHECKING:
    from model.recipe import TrainRecipe


def _flag(raw: str) -> bool:
    """``1/true/yes/on`` → True, ``0/false/no/off`` → False (a ValueError otherwise)."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


_flag.__name__ = "flag (1 or 0)"


def _local_path(raw: str) -> str:
    """A file path as given, ``~`` expanded and made absolute (versions record it)."""
    return os.path.abspath(os.path.expanduser(raw))


_local_path.__name__ = "path"


@dataclass(frozen=True)
class WorkerOptions:
    """Tuning of the background loop; see the module docstring for the variables."""

    retrain_every: int = 10
    train_only_approved: bool = False
    """Train (and count new labels) on approved labels only; submitted ones wait for review."""
    train_steps: int | None = None
    """``None``: the recipe's steps on the run's device (:meth:`TrainRecipe.for_device`)."""
    train_seconds: float | None = None
    """``None``: the recipe's time budget on the run's device; ``0``: no limit."""
    batch_size: int | None = None
    """``None``: the recipe's batch size on the run's device."""
    lr: float | None = None
    """``None``: the recipe's rule (by optimizer, fine-tuning or not)."""
    train_config: str = "small"
    train_size: int | None = None
    """``None``: the recipe's input size of a fresh model on the run's device."""
    backbone_weights: str | None = None
    """Local torchvision trunk weights of a fresh model (``ParserConfig.backbone_weights``);
    ``None``: random initialisation."""
    train_timeout_s: int = 3600
    distill_weight: float | None = None
    """``None``: the recipe's distillation weight."""
    distill_min_f1: float | None = None
    """``None``: :data:`model.recipe.DISTILL_MIN_F1`."""
    max_unlabeled: int = 64
    distill_batch: int | None = None
    """``None``: half the batch (at least 1)."""
    loader_workers: int | None = None
    device: str = "auto"
    torch_threads: int | None = None
    sam_checkpoint: str | None = None
    sam_model: str = "vit_b"
    workers: int = 2
    progress_interval_s: float = 1.0
    """Least time between two progress rows written during training (the UI's curve)."""
    predict_chunk: int = 16
    """Images per scoring task after a new model (several consumers share the work)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "WorkerOptions":
        """Read ``FACET_*`` variables (``os.environ`` by default); ``overrides`` win."""
        env = os.environ if env is None else env

        def get(name: str, kind: type, default: Any) -> Any:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise FacetError(f"{name}={raw!r} is not a valid {kind.__name__}") from None

        opts = cls(
            retrain_every=get("FACET_RETRAIN_EVERY", int, cls.retrain_every),
            train_only_approved=get("FACET_TRAIN_ONLY_APPROVED", _flag, False),
            train_steps=get("FACET_TRAIN_STEPS", int, None),
            train_seconds=get("FACET_TRAIN_SECONDS", float, None),
            batch_size=get("FACET_TRAIN_BATCH", int, None),
            lr=get("FACET_TRAIN_LR", float, None),
            train_config=get("FACET_TRAIN_CONFIG", str, cls.train_config),
            train_size=get("FACET_TRAIN_SIZE", int, None),
            backbone_weights=get("FACET_BACKBONE_WEIGHTS", _local_path, None),
            train_timeout_s=get("FACET_TRAIN_TIMEOUT", int, cls.train_timeout_s),
            distill_weight=get("FACET_DISTILL_WEIGHT", float, None),
            distill_min_f1=get("FACET_DISTILL_MIN_F1", float, None),
            max_unlabeled=get("FACET_DISTILL_MAX_UNLABELED", int, cls.max_unlabeled),
            distill_batch=get("FACET_DISTILL_BATCH", int, None),
            loader_workers=get("FACET_TRAIN_LOADER_WORKERS", int, None),
            device=get("FACET_DEVICE", str, cls.device),
            torch_threads=get("FACET_TORCH_THREADS", int, None),
            sam_checkpoint=get("FACET_SAM_CHECKPOINT", str, None),
            sam_model=get("FACET_SAM_MODEL", str, cls.sam_model),
            workers=get("FACET_WORKERS", int, cls.workers),
        )
        opts = replace(opts, **overrides)
        opts.check()
        return opts

    def check(self) -> None:
        """Raise :class:`FacetError` naming the first value out of range."""
        if self.retrain_every < 0:
            raise FacetError(f"FACET_RETRAIN_EVERY must be >= 0, got {self.retrain_every}")
        if self.train_steps is not None and self.train_steps < 1:
            raise FacetError(f"FACET_TRAIN_STEPS must be >= 1, got {self.train_steps}")
        if self.train_seconds is not None and not self.train_seconds >= 0:
            raise FacetError(f"FACET_TRAIN_SECONDS must be >= 0, got {self.train_seconds}")
        if self.distill_min_f1 is not None and not 0.0 <= self.distill_min_f1 <= 1.0:
            raise FacetError(f"FACET_DISTILL_MIN_F1 must be in 0..1, got {self.distill_min_f1}")
        if self.batch_size is not None and self.batch_size < 1:
            raise FacetError(f"FACET_TRAIN_BATCH must be >= 1, got {self.batch_size}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise FacetError(f"FACET_DEVICE must be auto, cpu or cuda, got {self.device!r}")
        if self.workers < 1:
            raise FacetError(f"FACET_WORKERS must be >= 1, got {self.workers}")
        if self.backbone_weights is not None and not os.path.isfile(self.backbone_weights):
            raise FacetError(f"FACET_BACKBONE_WEIGHTS={self.backbone_weights!r} is not a file")
        if self.train_timeout_s < 1:
            raise FacetError(f"FACET_TRAIN_TIMEOUT must be >= 1, got {self.train_timeout_s}")

    def recipe_for(self, device: str) -> "TrainRecipe":
        """The training recipe of a run on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``…):
        :meth:`TrainRecipe.for_device` with the variables that are set applied over it."""
        from model.recipe import TrainRecipe

        recipe = TrainRecipe.for_device(device)
        changes: dict[str, Any] = {
            k: v for k, v in (("steps", self.train_steps), ("batch_size", self.batch_size),
                              ("lr", self.lr), ("input_size", self.train_size),
                              ("num_workers", self.loader_workers)) if v is not None}
        if self.train_seconds is not None:
            changes["time_budget_s"] = self.train_seconds or None  # 0: no limit
        if self.distill_weight is not None:
            changes["distill"] = replace(recipe.distill, weight=self.distill_weight)
        return recipe.replace(**changes)

    def steps_for(self, device: str) -> int:
        """Steps of a run on ``device``."""
        return self.recipe_for(device).steps

    def seconds_for(self, device: str) -> float | None:
        """Training-time budget of a run on ``device`` in seconds; ``None``: no limit."""
        return self.recipe_for(device).time_budget_s

    def batch_for(self, device: str) -> int:
        """Images per training step on ``device``."""
        return self.recipe_for(device).batch_size

    def size_for(self, device: str) -> int | None:
        """Input side of a fresh model on ``device``; ``None``: the preset's."""
        return self.recipe_for(device).input_size

    def run_device(self) -> str:
        """``device`` resolved for this machine: ``auto`` → ``cuda`` when torch sees a GPU, else
        ``cpu``; ``cuda`` without one is a :class:`FacetError`."""
        from model.devices import resolve_device  # torch: only where a run needs it

        return str(resolve_device(self.device))

    @property
    def label_states(self) -> tuple[RevisionState, ...]:
        """Revision states that count as a training label."""
        return APPROVED_ONLY if self.train_only_approved else LABELLED_STATES

    def teaches(self, mean_f1: float) -> bool:
        """Whether a model with this validation mean F1 is good enough to distil from."""
        from model.recipe import DISTILL_MIN_F1

        floor = DISTILL_MIN_F1 if self.distill_min_f1 is None else self.distill_min_f1
        return not mean_f1 < floor

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these options in a child process (unset ones omitted)."""
        pairs = {
            "FACET_RETRAIN_EVERY": self.retrain_every, "FACET_TRAIN_STEPS": self.train_steps,
            "FACET_TRAIN_ONLY_APPROVED": "1" if self.train_only_approved else None,
            "FACET_TRAIN_SECONDS": self.train_seconds,
            "FACET_TRAIN_BATCH": self.batch_size, "FACET_TRAIN_LR": self.lr,
            "FACET_TRAIN_CONFIG": self.train_config, "FACET_TRAIN_SIZE": self.train_size,
            "FACET_BACKBONE_WEIGHTS": self.backbone_weights,
            "FACET_TRAIN_TIMEOUT": self.train_timeout_s,
            "FACET_DISTILL_WEIGHT": self.distill_weight,
            "FACET_DISTILL_MIN_F1": self.distill_min_f1,
            "FACET_DISTILL_MAX_UNLABELED": self.max_unlabeled,
            "FACET_DISTILL_BATCH": self.distill_batch,
            "FACET_TRAIN_LOADER_WORKERS": self.loader_workers, "FACET_DEVICE": self.device,
            "FACET_TORCH_THREADS": self.torch_threads,
            "FACET_SAM_CHECKPOINT": self.sam_checkpoint, "FACET_SAM_MODEL": self.sam_model,
            "FACET_WORKERS": self.workers,
        }
        return {k: str(v) for k, v in pairs.items() if v is not None}
