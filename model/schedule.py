"""The learning-rate schedule of a training run, by step or by the clock.

A run is ``steps`` long; with a time budget its position on the schedule follows the elapsed
share of the budget when that is ahead of the step count, so a run on a slow or busy machine
still warms up, decays and ends on time, just with fewer steps.
"""
from __future__ import annotations

import math


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
    the elapsed share of the budget times ``steps``. The run is over when the position
    reaches ``steps``.
    """
    if time_budget_s is None:
        return step
    return max(step, min(steps, int(steps * elapsed_s / time_budget_s)))


def heading_for(done: int, steps: int, elapsed_s: float, time_budget_s: float | None) -> int:
    """The step count a run still under way will end with, as known after ``done`` steps (for
    progress bars): ``steps``, or with a budget the steps that fit in it at the pace so far
    (at least one more)."""
    if time_budget_s is None:
        return steps
    return max(done + 1, min(steps, math.ceil(done * time_budget_s / max(elapsed_s, 1e-9))))
