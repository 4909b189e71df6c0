"""Shared pieces of the benchmark scripts: synthetic data, timing, tables, time budgets.

Benchmarks print markdown tables to stdout and, with ``--out DIR``, also write them there.
A SIGTERM (from ``timeout``) turns into :class:`BudgetExceeded` (see :class:`Stop`), so a
script can still print the rows it finished.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from model.devices import resolve_device, set_torch_threads  # noqa: E402

Sample = tuple[np.ndarray, np.ndarray]


class BudgetExceeded(Exception):
    """The wall-clock budget (``--budget-s`` or an outside SIGTERM) ran out."""


class Stop:
    """SIGTERM (``timeout`` signals the whole process group) raises :class:`BudgetExceeded` in
    the main process; DataLoader workers die of the same signal, and the error that their
    death raises next in the main process also counts as a stop once ``received`` is set."""

    def __init__(self) -> None:
        self.received = False
        signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum: int, frame: Any) -> None:
        self.received = True
        raise BudgetExceeded(f"signal {signum}")

    def is_stop(self, err: BaseException) -> bool:
        return isinstance(err, (BudgetExceeded, KeyboardInterrupt)) or self.received

    def report(self, err: BaseException) -> str:
        """Print "stopped early: …" for a stop and return the reason (the caller then prints
        its partial table, titled with it); re-raise anything else."""
        if not self.is_stop(err):
            raise err
        stopped = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"stopped early: {stopped}", flush=True)
        return stopped


class Budget:
    """``check()`` raises :class:`BudgetExceeded` once ``seconds`` have passed (None = never)."""

    def __init__(self, seconds: float | None) -> None:
        self.deadline = None if not seconds else time.monotonic() + seconds

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded("time budget spent")

    def left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


def base_args(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--quick", action="store_true", help="small settings for a 2-core CPU")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (CPU device only)")
    p.add_argument("--out", type=Path, help="also write the tables (markdown + json) here")
    p.add_argument("--budget-s", type=float, help="stop starting new runs after this long")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for rendering synthetic faces (default: cores, at most 16)")
    p.add_argument("--loader-workers", type=int, default=None,
                   help="DataLoader workers for training (default: the recipe's choice)")
    p.add_argument("--tiny", action="store_true",
                   help="smoke test of the script itself: a few faces, 2 steps, 1 seed")
    return p


def setup(args: argparse.Namespace) -> tuple[torch.device, Stop]:
    device = resolve_device(args.device)
    set_torch_threads(args.threads if device.type == "cpu" else max(1, os.cpu_count() or 1))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device, Stop()


def _render(job: tuple[int, int, str]) -> Sample:
    from model.synth import render_face

    seed, size, style = job
    return render_face(seed, size, style)


def faces(style: str, count: int, size: int, seed: int, workers: int | None = None) -> list[Sample]:
    """``count`` synthetic faces of ``style`` at ``size`` (label maps exact at that size).

    Seeds ``seed * 100_000 + i``: disjoint sets for different ``seed`` values.
    """
    jobs = [(seed * 100_000 + i, size, style) for i in range(count)]
    n = workers if workers is not None else min(16, os.cpu_count() or 1)
    if n <= 1 or count < 8:
        return [_render(j) for j in jobs]
    with ProcessPoolExecutor(n) as pool:
        return list(pool.map(_render, jobs, chunksize=max(1, count // (4 * n))))


def mean_std(values: Sequence[float]) -> str:
    """``"mean ± std"`` in percent points (F1 given in 0-1)."""
    if not values:
        return "-"
    m = 100 * statistics.fmean(values)
    s = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:.2f} ± {s:.2f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def emit(name: str, title: str, text: str, out: Path | None, data: Any = None) -> None:
    """Print a titled table and, with ``out``, write ``{name}.md`` (and ``{name}.json``)."""
    block = f"### {title}\n\n{text}\n"
    print(block, flush=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.md").write_text(block)
        if data is not None:
            (out / f"{name}.json").write_text(json.dumps(data, indent=1))


def describe_host(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU, {torch.get_num_threads()} threads (torch {torch.__version__})"


def score(model: torch.nn.Module, config: Any, labels: Any, device: torch.device,
          tests: dict[str, list[Sample]], meta: dict[str, Any] | None = None) -> dict[str, dict]:
    """Evaluate a trained model on each named test set (``model.evaluate`` protocol); ``meta``
    (the run's metadata) lets the prediction undo its class weights as the app does."""
    from model.evaluate import evaluate
    from model.inference import Predictor

    pred = Predictor(model, config, labels, meta, device=device)
    return {name: evaluate(pred, data) for name, data in tests.items()}


def infer_ms(model: torch.nn.Module, size: int, device: torch.device, reps: int = 7) -> float:
    """Best-of-``reps`` forward ms for one ``size x size`` image (eval mode, fp32,
    channels_last); the minimum, because on a shared host slow outliers are other jobs."""
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    x = torch.rand(1, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    times = []
    with torch.inference_mode():
        for i in range(reps + 2):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t)
    return 1000 * min(times)


def mode(args: argparse.Namespace) -> str:
    return "TINY smoke test" if args.tiny else "quick" if args.quick else "full"


def step_seconds(samples: list[Sample], config: Any, device: torch.device,
                 recipe: Any, **run: Any) -> float:
    """Median seconds per training step, measured on a short throw-away run of ``recipe``
    (a :class:`model.recipe.TrainRecipe`; warm-up excluded). ``run``: more arguments of
    :func:`model.train.train` (``unlabeled=…``)."""
    from model.train import train

    stamps: list[float] = []
    train(samples, config, recipe, device=device,
          on_step=lambda *a: stamps.append(time.perf_counter()), **run)
    skip = min(3, len(stamps) - 2)  # warm-up steps
    return statistics.median(np.diff(stamps[skip:]).tolist())


def fit_steps(wanted: int, seconds: float, per_step: float, floor: int = 20) -> int:
    """The most steps (at most ``wanted``, at least ``min(floor, wanted)``) that fit in ``seconds``."""
    return int(max(min(floor, wanted), min(wanted, seconds / max(per_step, 1e-6))))


@dataclass(frozen=True)
class StudioComparison:
    """Data and budget of a fixed-budget comparison trained on studio faces (ablation, peer
    baseline): every run trains ``steps`` steps of ``batch`` images of ``size`` pixels."""

    size: int
    steps: int
    batch: int
    seeds: range
    """The training seeds: ``--seeds`` of them from ``--first-seed`` (so a run can add seeds to
    an earlier one)."""
    train_set: list[Sample]
    tests: dict[str, list[Sample]]
    budget: Budget
    started: float


def comparison_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add what :func:`studio_comparison` reads beyond :func:`base_args`: ``--steps``,
    ``--seeds``, ``--first-seed`` and ``--size`` (each defaulting by ``--tiny``/``--quick``/full)."""
    p.add_argument("--steps", type=int)
    p.add_argument("--seeds", type=int, help="how many training seeds")
    p.add_argument("--first-seed", type=int, default=0,
                   help="the first training seed (default 0; the data are the same whatever it is)")
    p.add_argument("--size", type=int, help="input side in px (default: by --quick/--tiny)")
    return p


def studio_comparison(args: argparse.Namespace, device: torch.device,
                      runs_per_seed: int) -> StudioComparison:
    """Sizes for ``--tiny``/``--quick``/full, the studio training set and the studio + wild
    test sets; with ``--budget-s`` (and no ``--steps``) the steps per run are fitted to the
    budget from a measured step time, for ``runs_per_seed x seeds`` runs."""
    from model.net import ParserConfig
    from model.recipe import TrainRecipe

    size, n_train, n_test, steps, batch, seeds = (
        (64, 8, 3, 2, 2, 1) if args.tiny else (128, 150, 24, 200, 8, 1) if args.quick
        else (256, 1000, 100, 1500, 16, 2))
    steps, seeds = args.steps or steps, args.seeds or seeds
    size = args.size or size
    budget = Budget(args.budget_s)
    started = time.time()
    train_set = faces("studio", n_train, size, seed=1, workers=args.workers)
    tests = {"studio": faces("studio", n_test, size, seed=2, workers=args.workers),
             "wild": faces("wild", n_test, size, seed=5, workers=args.workers)}
    if args.budget_s and not args.steps:
        probe = TrainRecipe(steps=4 if args.tiny else 12, batch_size=batch,
                            num_workers=args.loader_workers)
        per_step = step_seconds(train_set[:16], ParserConfig.small(input_size=size), device, probe)
        steps = fit_steps(steps, 0.85 * budget.left() / (runs_per_seed * seeds), per_step)
        print(f"step time {per_step:.3f} s -> {steps} steps per run", flush=True)
    return StudioComparison(size, steps, batch, range(args.first_seed, args.first_seed + seeds),
                            train_set, tests, budget, started)
