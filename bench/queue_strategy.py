"""Does the annotation queue save labels? Random order against the studio's uncertainty queue
(and uncertainty + diversity) on a pool that holds faces the start model has not learned.

A start model is trained on ``studio`` faces only. The pool mixes ``studio`` faces with a
share (``--wild-share``) of ``wild`` ones (other lighting, hands, masks, earrings); the
held-out test set has the same mix. Each order labels pool faces in rounds (K = 4, 6, 8, ...):
the faces of a round are chosen with the model of the round before (the start model first),
then the start model is fine-tuned on every label so far, distilling from itself on the
labelled and the unlabelled pool faces: what the worker's runs do while the start model stays
the active one (the worker moves on to each model it publishes). With ``--fresh STEPS`` there
is no start model: each round trains a fresh model on every label so far, and the first
round's faces are the same random ones in every order; ``--no-distill`` fine-tunes without
distilling.
Orders:

- ``random``: a seeded permutation of the pool;
- ``uncertainty``: highest :meth:`model.inference.Predictor.uncertainty` first, the score the
  worker stores as the queue's priority;
- ``diverse``: :func:`acquisition.uncertain_and_diverse` (the most uncertain faces, kept
  apart in the model's predicted layout).

Printed: held-out mean F1 (one confusion matrix over the mixed test set, and over its wild
faces) per order and K, mean ± std over seeds; and, per K of each queue, the labels random
order needs for the same F1 (linear between its K on its mean curve) and the share saved;
then seed by seed, each queue with a quarter to a third fewer labels against random order.

    .venv/bin/python bench/queue_strategy.py --quick --threads 1 --jobs 2 --start /tmp/start.pt
    .venv/bin/python bench/queue_strategy.py --quick --threads 1 --jobs 2 --fresh 300
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from acquisition import layout_features, uncertain_and_diverse  # noqa: E402
from common import (Budget, Sample, base_args, describe_host, emit, faces, mean_std, mode,
                    setup, table)  # noqa: E402

from model.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from model.evaluate import evaluate  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.net import ParserConfig  # noqa: E402
from model.recipe import TrainRecipe, default_lr  # noqa: E402
from model.train import train  # noqa: E402

ORDERS = ("random", "uncertainty", "diverse")
TEST_SEED = 7
MAX_UNLABELED = 64
"""Unlabelled pool faces a round distils on (the worker's ``FACET_DISTILL_MAX_UNLABELED``)."""


@dataclass(frozen=True)
class Settings:
    """Sizes of one comparison: faces of ``size`` px; ``ks``: cumulative labels per round."""

    size: int
    n_teacher: int
    teacher_steps: int
    n_pool: int
    n_test: int
    wild_share: float
    finetune_steps: int
    batch_size: int
    ks: tuple[int, ...]
    seeds: tuple[int, ...]


QUICK = Settings(size=128, n_teacher=150, teacher_steps=600, n_pool=96, n_test=64,
                 wild_share=0.25, finetune_steps=100, batch_size=8, ks=(4, 6, 8, 12, 16, 24),
                 seeds=(0, 1, 2))
TINY = Settings(size=64, n_teacher=8, teacher_steps=2, n_pool=12, n_test=4, wild_share=0.25,
                finetune_steps=2, batch_size=2, ks=(2, 4), seeds=(0,))
FULL = Settings(size=256, n_teacher=1000, teacher_steps=1500, n_pool=400, n_test=200,
                wild_share=0.25, finetune_steps=300, batch_size=16, ks=(8, 12, 16, 24, 32, 48),
                seeds=(0, 1, 2))


def mixed(count: int, share: float, size: int, seed: int,
          workers: int | None) -> tuple[list[Sample], int]:
    """``count`` faces, ``round(share * count)`` of them ``wild`` (first), the rest ``studio``;
    and that number of wild faces."""
    n_wild = round(share * count)
    return (faces("wild", n_wild, size, seed=seed, workers=workers)
            + faces("studio", count - n_wild, size, seed=seed + 1, workers=workers)), n_wild


def scoring_faces(s: Settings, workers: int | None) -> tuple[list[Sample], int]:
    """The held-out faces every model is scored on (the same in every process), wild first."""
    return mixed(s.n_test, s.wild_share, s.size, seed=TEST_SEED, workers=workers)


def choose(order: str, model: Checkpoint | None, pool: list[Sample], taken: list[int], n: int,
           rng: np.random.Generator, device: str | torch.device) -> list[int]:
    """The next ``n`` pool indices for ``order`` (never one in ``taken``)."""
    free = [i for i in range(len(pool)) if i not in taken]
    if order == "random":
        return [int(i) for i in rng.permutation(free)[:n]]
    pred = Predictor(model.model, model.config, model.labels, model.meta, device=device)
    images = [im for im, _ in pool]
    probs = torch.cat([pred.probabilities_small(images[s:s + 16])
                       for s in range(0, len(images), 16)])
    scores = np.array([pred.uncertainty_of(probs[i]) for i in free])
    if order == "uncertainty":
        return [free[int(i)] for i in np.argsort(-scores, kind="stable")[:n]]
    layouts = layout_features(probs)
    return [free[i] for i in uncertain_and_diverse(scores, layouts[free], layouts[taken], n)]


def start_model(s: Settings, path: Path | None, workers: int | None,
                loader_workers: int | None, device: torch.device) -> Checkpoint:
    """The model every round starts from: read from ``path`` when that file exists, else
    trained on studio faces (and written to ``path`` when given)."""
    if path and path.exists():
        start = load_checkpoint(path)
        print(f"start model: {path} ({start.meta.get('steps')} steps)", flush=True)
        return start
    recipe = TrainRecipe(steps=s.teacher_steps, batch_size=s.batch_size,
                         num_workers=loader_workers)
    teacher = train(faces("studio", s.n_teacher, s.size, seed=1, workers=workers),
                    ParserConfig.small(input_size=s.size), recipe, device=device)
    start = Checkpoint(teacher.model, teacher.config, teacher.labels, teacher.meta)
    if path:
        save_checkpoint(path, start.model, start.config, start.labels, start.meta)
    print(f"start model: {s.teacher_steps} steps on studio faces in "
          f"{teacher.meta['seconds']:.0f} s", flush=True)
    return start


def held_out(model: Checkpoint, test: list[Sample], n_wild: int,
             device: str | torch.device) -> tuple[float, float]:
    """Mean F1 of ``model`` on ``test`` and on its first ``n_wild`` (wild) faces."""
    pred = Predictor(model.model, model.config, model.labels, model.meta, device=device)
    wild = evaluate(pred, test[:n_wild])["mean_f1"] if n_wild else float("nan")
    return evaluate(pred, test)["mean_f1"], wild


@dataclass(frozen=True)
class Job:
    """One order on one seed's pool, run in a worker process (one per ``--jobs``)."""

    order: str
    seed: int
    settings: Settings
    start: Checkpoint | None
    """``None``: each round trains a fresh model for ``fresh_steps``."""
    fresh_steps: int
    distill: bool
    """Fine-tuning rounds distil from the start model (off: plain fine-tuning)."""
    threads: int
    device: str


def run_order(job: Job) -> list[tuple[float, float, int]]:
    """``(held-out F1, wild F1, wild labels)`` after each round of ``job.settings.ks``."""
    from model.devices import set_torch_threads

    set_torch_threads(job.threads)
    s, device = job.settings, job.device
    test, n_wild_test = scoring_faces(s, workers=1)
    pool, n_wild_pool = mixed(s.n_pool, s.wild_share, s.size, seed=10 + 10 * job.seed, workers=1)
    if job.start is None:
        recipe = TrainRecipe(steps=job.fresh_steps, batch_size=s.batch_size, seed=job.seed)
    else:
        recipe = TrainRecipe(steps=s.finetune_steps, batch_size=s.batch_size, seed=job.seed,
                             lr=default_lr(fine_tune=True))
    rng = np.random.default_rng([job.seed, 17])
    model, taken, rows = job.start, [], []
    for k in s.ks:
        # no model yet (fresh runs): every order starts from the same random faces
        order = job.order if model is not None else "random"
        taken += choose(order, model, pool, taken, k - len(taken),
                        rng if model is not None else np.random.default_rng([job.seed, 18]),
                        device)
        labelled = [pool[i] for i in taken]
        if job.start is None:
            r = train(labelled, ParserConfig.small(input_size=s.size), recipe, device=device)
        elif job.distill:
            rest = [pool[i][0] for i in range(len(pool)) if i not in taken][:MAX_UNLABELED]
            r = train(labelled, None, recipe.with_loop_distillation(), init=job.start,
                      teacher=job.start, unlabeled=rest, device=device)
        else:
            r = train(labelled, None, recipe, init=job.start, device=device)
        model = Checkpoint(r.model, r.config, r.labels, r.meta)
        f1, wild = held_out(model, test, n_wild_test, device)
        rows.append((f1, wild, sum(i < n_wild_pool for i in taken)))
        print(f"seed {job.seed} {job.order} K={k}: held-out {100 * f1:.2f} (wild "
              f"{100 * wild:.2f}), {rows[-1][2]} wild labels, {r.meta['seconds']:.0f} s",
              flush=True)
    return rows


def labels_needed(ks: list[int], random_f1: list[float], target: float) -> float | None:
    """The labels at which random order's mean curve first reaches ``target`` (linear between
    its K); ``None`` when it does not within ``ks`` (at or below the first K: ``ks[0]``)."""
    if random_f1[0] >= target:
        return float(ks[0])
    for (k0, f0), (k1, f1) in zip(zip(ks, random_f1), zip(ks[1:], random_f1[1:])):
        if f0 < target <= f1:
            return k0 + (k1 - k0) * (target - f0) / (f1 - f0)
    return None


Runs = dict[tuple[str, int], list[tuple[float, float, int]]]


def curve_rows(runs: Runs, ks: list[int], orders: list[str], n_seeds: int) -> list[list]:
    """Rows of the main table: per order and K, F1 ± std, wild labels, what random needs."""
    def mean(order: str, k: int, field: int) -> float:
        return statistics.fmean(r[field] for r in runs[(order, k)])

    def pm(order: str, k: int, field: int) -> str:
        return mean_std([r[field] for r in runs[(order, k)]])

    done_ks = [k for k in ks if len(runs.get(("random", k), [])) == n_seeds]
    random_curve = [mean("random", k, 0) for k in done_ks]
    rows = []
    for order in orders:
        for k in ks:
            if (order, k) not in runs:
                continue
            need = saved = ""
            if order != "random" and done_ks:
                needed = labels_needed(done_ks, random_curve, mean(order, k, 0))
                need, saved = random_needs(k, needed, done_ks)
            rows.append([order, k, pm(order, k, 0), pm(order, k, 1),
                         f"{mean(order, k, 2):.1f}", need, saved])
    return rows


def random_needs(k: int, needed: float | None, ks: list[int]) -> tuple[str, str]:
    """The "random needs" and "labels saved" cells of a queue with ``k`` labels: beyond the
    curve (``needed`` None) and at its first K they are bounds."""
    if needed is None:
        return f"> {ks[-1]}", f"≥ {100 * (1 - k / ks[-1]):+.0f} %"
    if needed == ks[0]:
        return f"≤ {ks[0]}", f"≤ {100 * (1 - k / ks[0]):+.0f} %"
    return f"{needed:.1f}", f"{100 * (1 - k / needed):+.0f} %"


def paired_rows(runs: Runs, ks: list[int], orders: list[str]) -> list[list]:
    """Per queue order and K: the queue with at least 25 % fewer labels (the largest K' ≤ ¾ K
    of ``ks``) against random order with K, seed by seed (held-out mean F1 points)."""
    rows = []
    for order in (o for o in orders if o != "random"):
        for k in ks:
            fewer = [q for q in ks if q <= 0.75 * k]
            if not fewer or (order, fewer[-1]) not in runs or ("random", k) not in runs:
                continue
            queue, rand = runs[(order, fewer[-1])], runs[("random", k)]
            diffs = [100 * (a[0] - b[0]) for a, b in zip(queue, rand)]
            rows.append([order, f"{fewer[-1]} vs {k}", " / ".join(f"{d:+.2f}" for d in diffs),
                         f"{statistics.fmean(diffs):+.2f}",
                         f"{sum(d >= 0 for d in diffs)} of {len(diffs)}"])
    return rows


def report(data: dict, out: Path | None) -> None:
    """Print (and with ``out`` write) both tables from a run's data (see ``--from-json``)."""
    s, base = data["settings"], data["start"]
    runs: Runs = {(key.split("|")[0], int(key.split("|")[1])): [tuple(r) for r in v]
                  for key, v in data["runs"].items()}
    orders = data.get("orders") or [o for o in ORDERS if any(o == r for r, _ in runs)]
    rows = [] if base is None else \
        [["start model", 0, f"{100 * base[0]:.2f}", f"{100 * base[1]:.2f}", "", "", ""]]
    rows += curve_rows(runs, list(s["ks"]), orders, len(s["seeds"]))
    emit("queue_strategy", data.get("title", "Annotation queue"),
         table(["order", "K labels", "held-out mean F1", "held-out wild F1", "wild labels",
                "random needs", "labels saved"], rows), out, data)
    emit("queue_strategy_paired", "The queue with ≥ 25 % fewer labels than random order, "
         "seed by seed",
         table(["order", "queue K vs random K", "Δ held-out mean F1 per seed", "mean Δ",
                "queue ahead"], paired_rows(runs, list(s["ks"]), orders)), out)


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--orders", default=",".join(ORDERS),
                   help="comma-separated, of " + ", ".join(ORDERS))
    p.add_argument("--seeds", type=int, help="number of seeds (pools and training seeds)")
    p.add_argument("--ks", help="cumulative labels per round, e.g. 4,6,8,12,16,24")
    p.add_argument("--wild-share", type=float, help="share of wild faces in pool and test set")
    p.add_argument("--teacher-steps", type=int)
    p.add_argument("--steps", type=int, help="fine-tuning steps per round")
    p.add_argument("--start", type=Path,
                   help="the start model's checkpoint: loaded when the file exists, else "
                        "trained and written there (so variants share one start model)")
    p.add_argument("--fresh", type=int, metavar="STEPS",
                   help="no start model: each round trains a fresh model for STEPS steps")
    p.add_argument("--no-distill", action="store_true",
                   help="plain fine-tuning rounds, without distilling from the start model")
    p.add_argument("--jobs", type=int, default=1,
                   help="orders x seeds run in this many processes at once (each --threads)")
    p.add_argument("--from-json", type=Path, metavar="FILE",
                   help="print the tables of an earlier run's queue_strategy.json; train nothing")
    args = p.parse_args()
    if args.from_json:
        try:
            data = json.loads(args.from_json.read_text())
        except (OSError, ValueError) as err:
            p.error(f"--from-json {args.from_json}: {err}")
        report(data, args.out)
        return 0
    try:
        ks = tuple(int(k) for k in args.ks.split(",")) if args.ks else None
    except ValueError:
        p.error(f"--ks takes whole numbers separated by commas, not {args.ks!r}")
    orders = args.orders.split(",")
    if bad := [o for o in orders if o not in ORDERS]:
        p.error(f"unknown order {bad[0]!r}; choose from {', '.join(ORDERS)}")
    if len(set(orders)) != len(orders):
        p.error(f"--orders names an order twice: {args.orders}")
    s = TINY if args.tiny else QUICK if args.quick else FULL
    s = replace(s, teacher_steps=args.teacher_steps or s.teacher_steps,
                finetune_steps=args.steps or s.finetune_steps,
                seeds=tuple(range(args.seeds)) if args.seeds else s.seeds,
                ks=ks or s.ks,
                wild_share=s.wild_share if args.wild_share is None else args.wild_share)
    if list(s.ks) != sorted(set(s.ks)) or s.ks[0] < 1 or s.ks[-1] > s.n_pool:
        p.error(f"--ks must rise from 1 to at most the pool ({s.n_pool})")
    if args.fresh is not None and args.fresh < 1:
        p.error("--fresh takes a number of steps, at least 1")
    if not 0 <= s.wild_share <= 1:
        p.error("--wild-share is a share in [0, 1]")
    device, stop = setup(args)
    budget = Budget(args.budget_s)
    t0 = time.time()
    start = None if args.fresh else start_model(s, args.start, args.workers,
                                                args.loader_workers, device)
    base = None
    if start is not None:
        base = held_out(start, *scoring_faces(s, args.workers), device)
        print(f"start model held-out {100 * base[0]:.2f} (wild {100 * base[1]:.2f})",
              flush=True)
    jobs = [Job(order, seed, s, start, args.fresh or 0, not args.no_distill, args.threads,
                str(device))
            for seed in s.seeds for order in orders]
    results: Runs = {}
    stopped = None
    try:
        with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as ex:
            for job, rows in zip(jobs, ex.map(run_order, jobs)):
                for k, row in zip(s.ks, rows):
                    results.setdefault((job.order, k), []).append(row)
                budget.check()
    except (Exception, KeyboardInterrupt) as err:  # a stop prints a partial table below
        stopped = stop.report(err)

    rounds = (f"each round trains a fresh model {args.fresh} steps (batch {s.batch_size}) on "
              f"every label so far, the first round's faces random in every order"
              if args.fresh else
              f"start model {s.teacher_steps} steps on {s.n_teacher} studio faces; each round "
              f"fine-tunes it {s.finetune_steps} steps (batch {s.batch_size}), "
              f"{'without distillation' if args.no_distill else 'distilling from it'}, on every "
              f"label so far")
    title = (f"Annotation queue ({mode(args)}): pool {s.n_pool} faces and test {s.n_test}, "
             f"{100 * s.wild_share:.0f} % wild; {rounds}; `small` at "
             f"{s.size}²; {len(s.seeds)} seeds; {describe_host(device)}; "
             f"{time.time() - t0:.0f} s" + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    report({"title": title, "settings": s.__dict__, "orders": orders, "start": base,
            "runs": {f"{o}|{k}": v for (o, k), v in results.items()}}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
