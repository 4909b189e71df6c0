"""Ablation at a fixed training budget: self-attention on/off, edge loss on/off.

"Edge loss off" removes the edge head, its balanced BCE and the extra cross-entropy weight on
edge pixels; "attention off" replaces the position/channel attention with plain conv blocks
of the same width. Trained on synthetic studio faces; mean F1 and the thin classes on studio
and wild test sets.

    .venv/bin/python bench/ablation.py --quick
    .venv/bin/python bench/ablation.py --device cuda
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (Budget, base_args, describe_host, emit, faces,  # noqa: E402
                    fit_steps, infer_ms, mean_std, mode, score, setup,
                    step_seconds, table)

from model.config import ParserConfig  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.train import train  # noqa: E402

VARIANTS = [  # name, attention, edge
    ("full (attention + edge)", True, True),
    ("no attention", False, True),
    ("no edge loss", True, False),
    ("neither", False, False),
]


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int)
    p.add_argument("--seeds", type=int)
    args = p.parse_args()
    device, stop = setup(args)
    size, n_train, n_test, steps, batch, seeds = (
        (64, 8, 3, 2, 2, 1) if args.tiny else (128, 150, 24, 200, 8, 1) if args.quick
        else (256, 1000, 100, 1500, 16, 2))
    steps, seeds = args.steps or steps, args.seeds or seeds
    budget = Budget(args.budget_s)
    t0 = time.time()
    train_set = faces("studio", n_train, size, seed=1, workers=args.workers)
    tests = {"studio": faces("studio", n_test, size, seed=2, workers=args.workers),
             "wild": faces("wild", n_test, size, seed=5, workers=args.workers)}
    if args.budget_s and not args.steps:
        per_step = step_seconds(train_set[:16], ParserConfig.small(input_size=size), device, batch,
                                args.loader_workers, steps=4 if args.tiny else 12)
        steps = fit_steps(steps, 0.85 * budget.left() / (len(VARIANTS) * seeds), per_step)
        print(f"step time {per_step:.3f} s -> {steps} steps per run", flush=True)
    runs: dict[str, list[dict]] = {}
    extra: dict[str, float] = {}
    stopped = None
    try:
        for seed in range(seeds):
            for name, attention, edge in VARIANTS:
                budget.check()
                config = ParserConfig.small(input_size=size, attention=attention, edge_head=edge)
                loss = LossConfig() if edge else LossConfig.plain()
                r = train(train_set, config, steps, device=device, seed=seed, batch_size=batch,
                          num_workers=args.loader_workers,
                          loss=loss)
                sc = score(r.model, r.config, r.labels, device, tests)
                runs.setdefault(name, []).append({
                    "studio": sc["studio"]["mean_f1"], "wild": sc["wild"]["mean_f1"],
                    "ear_r": sc["studio"]["per_class_f1"]["ear_r"],
                    "neck_l": sc["studio"]["per_class_f1"]["neck_l"], "seconds": r.meta["seconds"]})
                if name not in extra:
                    extra[name] = infer_ms(r.model, size, device)
                print(f"seed {seed} {name}: studio {100 * sc['studio']['mean_f1']:.2f} "
                      f"wild {100 * sc['wild']['mean_f1']:.2f} ({r.meta['seconds']:.0f} s)", flush=True)
    except (Exception, KeyboardInterrupt) as err:  # a stop is reported below; others re-raised
        if not stop.is_stop(err):
            raise
        stopped = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"stopped early: {stopped}", flush=True)

    rows = []
    for name, _, _ in VARIANTS:
        rs = runs.get(name, [])
        if not rs:
            continue
        thin = lambda key: mean_std([r[key] for r in rs if r[key] is not None])  # noqa: E731
        rows.append([name, mean_std([r["studio"] for r in rs]), mean_std([r["wild"] for r in rs]),
                     thin("ear_r"), thin("neck_l"), f"{extra[name]:.1f}", len(rs)])
    title = (f"Ablation ({mode(args)}): `small` at {size}², {steps} steps, "
             f"batch {batch}, {n_train} studio training faces, {n_test} test faces per style; "
             f"{describe_host(device)}; {time.time() - t0:.0f} s"
             + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    emit("ablation", title, table(["variant", "studio mean F1", "wild mean F1", "studio ear_r F1",
                                   "studio neck_l F1", "forward ms (best of 7)", "seeds"], rows),
         args.out, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
