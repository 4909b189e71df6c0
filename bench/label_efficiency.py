"""Label efficiency of fine-tuning, with and without self-distillation.

A teacher is trained on synthetic ``studio`` faces; it is then adapted to the shifted ``wild``
style with K labelled wild images (K = 4, 8, 16), either by plain fine-tuning or with
self-distillation (the studio teacher, frozen, gives soft targets on the labelled images and
on an unlabelled wild pool). Mean F1 on a wild test set (adaptation) and a studio test set
(forgetting); several seeds, mean ± std.

    .venv/bin/python bench/label_efficiency.py --quick            # 2-core CPU, minutes
    .venv/bin/python bench/label_efficiency.py --device cuda      # full
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import (Budget, base_args, describe_host, emit, faces, fit_steps, mean_std, mode,
                    score, setup, step_seconds, table)  # noqa: E402

from model.checkpoint import Checkpoint  # noqa: E402
from model.distill import DistillConfig  # noqa: E402
from model.net import ParserConfig  # noqa: E402
from model.recipe import TrainRecipe, default_lr  # noqa: E402
from model.train import train  # noqa: E402


@dataclass(frozen=True)
class Settings:
    size: int
    n_studio: int
    n_wild_labelled_pool: int
    n_unlabeled: int
    n_test: int
    teacher_steps: int
    finetune_steps: int
    batch_size: int
    ks: tuple[int, ...]
    seeds: tuple[int, ...]


QUICK = Settings(size=128, n_studio=150, n_wild_labelled_pool=48, n_unlabeled=48, n_test=24,
                 teacher_steps=300, finetune_steps=40, batch_size=8, ks=(4, 8, 16), seeds=(0, 1, 2))
TINY = Settings(size=64, n_studio=8, n_wild_labelled_pool=8, n_unlabeled=4, n_test=3,
                teacher_steps=2, finetune_steps=2, batch_size=2, ks=(2, 4), seeds=(0,))
FULL = Settings(size=256, n_studio=1000, n_wild_labelled_pool=200, n_unlabeled=400, n_test=100,
                teacher_steps=1500, finetune_steps=200, batch_size=16, ks=(4, 8, 16),
                seeds=(0, 1, 2))


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--teacher-steps", type=int)
    p.add_argument("--steps", type=int, help="fine-tuning steps")
    p.add_argument("--seeds", type=int, help="number of seeds")
    p.add_argument("--ema", action="store_true", help="EMA teacher instead of the frozen one")
    p.add_argument("--distill-weight", default=str(DistillConfig().weight),
                   help="weight of the KL term; several (\"1,2\") compare weights in one run")
    p.add_argument("--temperature", type=float, default=DistillConfig().temperature)
    p.add_argument("--confidence", type=float, default=None,
                   help="distil only where the teacher is this sure and agrees with the label")
    p.add_argument("--lr", type=float, default=default_lr(fine_tune=True),
                   help="fine-tuning learning rate (the recipe's default from a checkpoint)")
    args = p.parse_args()
    device, stop = setup(args)
    s = TINY if args.tiny else QUICK if args.quick else FULL
    s = Settings(**{**s.__dict__,
                    "teacher_steps": args.teacher_steps or s.teacher_steps,
                    "finetune_steps": args.steps or s.finetune_steps,
                    "seeds": tuple(range(args.seeds)) if args.seeds else s.seeds})
    budget = Budget(args.budget_s)
    t0 = time.time()
    config = ParserConfig.small(input_size=s.size)
    studio = faces("studio", s.n_studio, s.size, seed=1, workers=args.workers)
    tests = {"wild": faces("wild", s.n_test, s.size, seed=5, workers=args.workers),
             "studio": faces("studio", s.n_test, s.size, seed=2, workers=args.workers)}
    wild_pool = faces("wild", s.n_wild_labelled_pool, s.size, seed=3, workers=args.workers)
    wild_unlabeled = [im for im, _ in faces("wild", s.n_unlabeled, s.size, seed=4, workers=args.workers)]
    print(f"data ready in {time.time() - t0:.0f} s", flush=True)
    if args.budget_s:
        # Fit the step counts into the budget from measured step times (plain and distilling).
        probe = TrainRecipe(steps=4 if args.tiny else 12, batch_size=s.batch_size,
                            num_workers=args.loader_workers)
        t_plain = step_seconds(studio[:16], config, device, probe)
        t_sd = step_seconds(studio[:16], config, device,
                            probe.replace(distill=DistillConfig(ema_teacher=True)),
                            unlabeled=wild_unlabeled[:16])
        avail = 0.85 * budget.left()
        n_runs = len(s.ks) * len(s.seeds)
        n_sd = len(str(args.distill_weight).split(","))  # distilling runs per fine-tuning run
        s = Settings(**{**s.__dict__,
                        "teacher_steps": fit_steps(s.teacher_steps, 0.3 * avail, t_plain),
                        "finetune_steps": fit_steps(s.finetune_steps, 0.7 * avail / n_runs,
                                                    t_plain + n_sd * t_sd)})
        print(f"step times: plain {t_plain:.3f} s, distilling {t_sd:.3f} s -> teacher "
              f"{s.teacher_steps} steps, fine-tune {s.finetune_steps} steps", flush=True)

    results: dict[tuple[int, str], list[dict]] = {}
    base: dict[str, dict] | None = None
    weights = [float(w) for w in str(args.distill_weight).split(",")]
    suffix = (" (EMA)" if args.ema else "") + (
        f" (trusted ≥ {args.confidence})" if args.confidence is not None else "")
    sd_names = [f"self-distill{suffix}" + (f" w={w:g}" if len(weights) > 1 else "")
                for w in weights]
    stopped = None
    try:
        base_recipe = TrainRecipe(steps=s.teacher_steps, batch_size=s.batch_size,
                                  num_workers=args.loader_workers)
        teacher = train(studio, config, base_recipe, device=device)
        teacher_ckpt = Checkpoint(teacher.model, teacher.config, teacher.labels, teacher.meta)
        base = score(teacher_ckpt.model, teacher_ckpt.config, teacher_ckpt.labels, device, tests,
                     teacher_ckpt.meta)
        print(f"teacher: {s.teacher_steps} steps in {teacher.meta['seconds']:.0f} s; wild "
              f"{100 * base['wild']['mean_f1']:.2f}, studio {100 * base['studio']['mean_f1']:.2f}",
              flush=True)
        ft = base_recipe.replace(steps=s.finetune_steps, lr=args.lr)
        methods: list[tuple[str, TrainRecipe, dict]] = [("fine-tune", ft, {})]
        for name, weight in zip(sd_names, weights):
            distill = DistillConfig(weight=weight, temperature=args.temperature,
                                    confidence=args.confidence, ema_teacher=args.ema)
            run = {"unlabeled": wild_unlabeled} | ({} if args.ema else {"teacher": teacher_ckpt})
            methods.append((name, ft.replace(distill=distill), run))
        for seed in s.seeds:      # seeds outer: a run cut short still covers every K
            for k in s.ks:
                pick = np.random.default_rng([seed, k]).choice(len(wild_pool), size=k, replace=False)
                labelled = [wild_pool[i] for i in pick]
                for name, recipe, run in methods:
                    budget.check()
                    r = train(labelled, None, recipe.replace(seed=seed), init=teacher_ckpt,
                              device=device, **run)
                    sc = score(r.model, r.config, r.labels, device, tests, r.meta)
                    results.setdefault((k, name), []).append(
                        {"wild": sc["wild"]["mean_f1"], "studio": sc["studio"]["mean_f1"],
                         "seconds": r.meta["seconds"]})
                    print(f"K={k} seed={seed} {name}: wild {100 * sc['wild']['mean_f1']:.2f} "
                          f"studio {100 * sc['studio']['mean_f1']:.2f} ({r.meta['seconds']:.0f} s)",
                          flush=True)
    except (Exception, KeyboardInterrupt) as err:  # a stop prints a partial table below
        stopped = stop.report(err)

    rows = [] if base is None else [["0 (teacher)", "-", f"{100 * base['wild']['mean_f1']:.2f}",
                                     f"{100 * base['studio']['mean_f1']:.2f}", "", 1]]
    for k in s.ks:
        plain = results.get((k, "fine-tune"), [])
        for name in ["fine-tune", *sd_names]:
            runs = results.get((k, name), [])
            if not runs:
                continue
            delta = ""
            if name != "fine-tune" and plain:
                n = min(len(plain), len(runs))
                d = [runs[i]["wild"] - plain[i]["wild"] for i in range(n)]
                delta = mean_std(d)
            rows.append([k, name, mean_std([r["wild"] for r in runs]),
                         mean_std([r["studio"] for r in runs]), delta, len(runs)])
    title = (f"Label efficiency ({mode(args)}): teacher {s.teacher_steps} steps "
             f"on {s.n_studio} studio faces, fine-tune {s.finetune_steps} steps (batch "
             f"{s.batch_size}, lr {args.lr}) on K wild labels + {s.n_unlabeled} unlabelled; "
             f"`small` at {s.size}²; {s.n_test} test faces per style; {describe_host(device)}; "
             f"{time.time() - t0:.0f} s" + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    emit("label_efficiency", title,
         table(["K wild labels", "method", "wild mean F1", "studio mean F1",
                "Δ wild vs fine-tune (paired)", "seeds"], rows),
         args.out, {"settings": s.__dict__, "teacher": base and {k: v["mean_f1"] for k, v in base.items()},
                    "runs": {f"{k}|{n}": v for (k, n), v in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
