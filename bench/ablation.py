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
from common import (base_args, comparison_args, describe_host, emit, infer_ms, mean_std,
                    mode, score, setup, studio_comparison, table)  # noqa: E402

from core.labels import THIN_CLASSES  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.net import ParserConfig  # noqa: E402
from model.recipe import TrainRecipe  # noqa: E402
from model.train import train  # noqa: E402

VARIANTS = [  # name, attention, edge
    ("full (attention + edge)", True, True),
    ("no attention", False, True),
    ("no edge loss", True, False),
    ("neither", False, False),
]


def main() -> int:
    p = comparison_args(base_args(__doc__.split("\n\n")[0]))
    args = p.parse_args()
    device, stop = setup(args)
    run = studio_comparison(args, device, runs_per_seed=len(VARIANTS))
    size, steps, batch, seeds = run.size, run.steps, run.batch, run.seeds
    train_set, tests, budget, t0 = run.train_set, run.tests, run.budget, run.started
    runs: dict[str, list[dict]] = {}
    extra: dict[str, float] = {}
    stopped = None
    try:
        for seed in seeds:
            for name, attention, edge in VARIANTS:
                budget.check()
                config = ParserConfig.small(input_size=size, attention=attention, edge_head=edge)
                loss = LossConfig() if edge else LossConfig.plain()
                recipe = TrainRecipe(steps=steps, seed=seed, batch_size=batch,
                                     num_workers=args.loader_workers, loss=loss)
                r = train(train_set, config, recipe, device=device)
                sc = score(r.model, r.config, r.labels, device, tests, r.meta)
                runs.setdefault(name, []).append({"seed": seed,
                    "studio": sc["studio"]["mean_f1"], "wild": sc["wild"]["mean_f1"],
                    **{n: sc["studio"]["per_class_f1"][n] for n in THIN_CLASSES},
                    "seconds": r.meta["seconds"]})
                if name not in extra:
                    extra[name] = infer_ms(r.model, size, device)
                print(f"seed {seed} {name}: studio {100 * sc['studio']['mean_f1']:.2f} "
                      f"wild {100 * sc['wild']['mean_f1']:.2f} ({r.meta['seconds']:.0f} s)", flush=True)
    except (Exception, KeyboardInterrupt) as err:  # a stop prints a partial table below
        stopped = stop.report(err)

    rows = []
    for name, _, _ in VARIANTS:
        rs = runs.get(name, [])
        if not rs:
            continue
        thin = lambda key: mean_std([r[key] for r in rs if r[key] is not None])  # noqa: E731
        rows.append([name, mean_std([r["studio"] for r in rs]), mean_std([r["wild"] for r in rs]),
                     *map(thin, THIN_CLASSES), f"{extra[name]:.1f}", len(rs)])
    title = (f"Ablation ({mode(args)}): `small` at {size}², {steps} steps, "
             f"batch {batch}, {len(train_set)} studio training faces, {len(tests['studio'])} test faces per style; "
             f"{describe_host(device)}; {time.time() - t0:.0f} s"
             + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    emit("ablation", title, table(["variant", "studio mean F1", "wild mean F1",
                                   *(f"studio {n} F1" for n in THIN_CLASSES),
                                   "forward ms (best of 7)", "seeds"], rows),
         args.out, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
