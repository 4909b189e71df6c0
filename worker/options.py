"""What the worker reads from the environment, resolved once into a frozen dataclass.

Locations come from :class:`db.settings.Settings`; everything the loop tunes comes from here.
The consumer entry and the web process build one with :meth:`WorkerOptions.from_env` and pass
it down; no module reads ``os.environ`` on its own.

========================== ========= ==========================================================
variable                   default   meaning
========================== ========= ==========================================================
FACET_RETRAIN_EVERY        10        retrain by itself after this many newly submitted/approved
                                     labels (0: only when asked from the UI/API)
FACET_TRAIN_STEPS          40 | 1500 optimiser steps of one retraining run (default: 40 on a
                                     CPU, to publish within 5 min on 2 cores; 1500 on a GPU)
FACET_TRAIN_BATCH          4         images per step
FACET_TRAIN_LR             (model)   learning rate; empty = model.train's default
FACET_TRAIN_CONFIG         small     preset of a fresh model (``small`` | ``paper``)
FACET_TRAIN_SIZE           (preset)  input side of a fresh model in pixels (multiple of 32)
FACET_TRAIN_TIMEOUT        3600      seconds before a run is stopped (process workers only)
FACET_DISTILL_WEIGHT       (model)   weight of the self-distillation term
FACET_DISTILL_MAX_UNLABELED 64       unlabelled images used for distillation per run
FACET_DISTILL_BATCH        (half)    unlabelled images per step (default: half the batch, >= 1)
FACET_TRAIN_LOADER_WORKERS (model)   data-loading processes per run (model.train: 0 on CPU)
FACET_DEVICE               auto      ``auto`` (cuda when available), ``cpu`` or ``cuda``
FACET_TORCH_THREADS        (torch)   torch intra-op threads in each worker process
FACET_SAM_CHECKPOINT       (none)    SAM checkpoint for embeddings when a task gets none
FACET_SAM_MODEL            vit_b     SAM model type for that checkpoint
FACET_WORKERS              2         consumer worker processes
========================== ========= ==========================================================
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from model.errors import FacetError

CPU_STEPS = 40
"""Default steps per run on a CPU: the small config publishes 16 labels in about 2 minutes on
this project's shared 2-core box (60 steps took 6-8 minutes under heavy load); quality is
compute-bound there (docs/BENCHMARKS.md, "Loop")."""
GPU_STEPS = 1500
"""Default steps per run on a GPU: ~1 minute on an H100, held-out mean F1 > 0.5 after 8-16
synthetic labels (docs/BENCHMARKS.md, "Loop")."""


@dataclass(frozen=True)
class WorkerOptions:
    """Tuning of the background loop; see the module docstring for the variables."""

    retrain_every: int = 10
    train_steps: int | None = None
    """``None``: :data:`CPU_STEPS` or :data:`GPU_STEPS` by the device of the run."""
    batch_size: int = 4
    lr: float | None = None
    train_config: str = "small"
    train_size: int | None = None
    train_timeout_s: int = 3600
    distill_weight: float | None = None
    max_unlabeled: int = 64
    distill_batch: int | None = None
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
            train_steps=get("FACET_TRAIN_STEPS", int, None),
            batch_size=get("FACET_TRAIN_BATCH", int, cls.batch_size),
            lr=get("FACET_TRAIN_LR", float, None),
            train_config=get("FACET_TRAIN_CONFIG", str, cls.train_config),
            train_size=get("FACET_TRAIN_SIZE", int, None),
            train_timeout_s=get("FACET_TRAIN_TIMEOUT", int, cls.train_timeout_s),
            distill_weight=get("FACET_DISTILL_WEIGHT", float, None),
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
        if self.batch_size < 1:
            raise FacetError(f"FACET_TRAIN_BATCH must be >= 1, got {self.batch_size}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise FacetError(f"FACET_DEVICE must be auto, cpu or cuda, got {self.device!r}")
        if self.workers < 1:
            raise FacetError(f"FACET_WORKERS must be >= 1, got {self.workers}")
        if self.train_timeout_s < 1:
            raise FacetError(f"FACET_TRAIN_TIMEOUT must be >= 1, got {self.train_timeout_s}")

    def steps_for(self, device: str) -> int:
        """Steps of a run on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:0"``…)."""
        if self.train_steps is not None:
            return self.train_steps
        return GPU_STEPS if device.startswith("cuda") else CPU_STEPS

    def to_env(self) -> dict[str, str]:
        """The variables that rebuild these options in a child process (unset ones omitted)."""
        pairs = {
            "FACET_RETRAIN_EVERY": self.retrain_every, "FACET_TRAIN_STEPS": self.train_steps,
            "FACET_TRAIN_BATCH": self.batch_size, "FACET_TRAIN_LR": self.lr,
            "FACET_TRAIN_CONFIG": self.train_config, "FACET_TRAIN_SIZE": self.train_size,
            "FACET_TRAIN_TIMEOUT": self.train_timeout_s,
            "FACET_DISTILL_WEIGHT": self.distill_weight,
            "FACET_DISTILL_MAX_UNLABELED": self.max_unlabeled,
            "FACET_DISTILL_BATCH": self.distill_batch,
            "FACET_TRAIN_LOADER_WORKERS": self.loader_workers, "FACET_DEVICE": self.device,
            "FACET_TORCH_THREADS": self.torch_threads,
            "FACET_SAM_CHECKPOINT": self.sam_checkpoint, "FACET_SAM_MODEL": self.sam_model,
            "FACET_WORKERS": self.workers,
        }
        return {k: str(v) for k, v in pairs.items() if v is not None}
