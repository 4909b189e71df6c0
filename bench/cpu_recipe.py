"""The loop's training chain without the worker, to choose the CPU defaults of a retraining run.

What the worker does after K = 4, 8, 16 labels, reduced to its training: a fifth of the labels
(at least 2) is held back for validation; the first run trains a fresh model, every later run
starts from the previous one (optionally distilling from it on the labelled and 24 unlabelled
faces); each run trains for a fixed time (the worker's CPU recipe, :meth:`TrainRecipe.for_device`,
with the settings below over it). After each run the model is scored on held-out faces
(75 % ``studio``, 25 % ``wild``, 512 px, as in ``bench/loop.py``). Prints one JSON line per K.

    .venv/bin/python bench/cpu_recipe.py --size 160 --seconds 150
    .venv/bin/python bench/cpu_recipe.py --size 128 --seconds 150 --distill-weight 1 --ft-lr 4e-4
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import faces  # noqa: E402

from model.checkpoint import Checkpoint  # noqa: E402
from model.devices import set_torch_threads  # noqa: E402
from model.distill import DistillConfig  # noqa: E402
from model.evaluate import evaluate  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.recipe import TrainRecipe, default_lr  # noqa: E402
from model.train import train  # noqa: E402


def main() -> int:
    cpu = TrainRecipe.for_device("cpu")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=cpu.input_size, help="network input side, px")
    p.add_argument("--seconds", type=float, default=cpu.time_budget_s,
                   help="training time per run")
    p.add_argument("--batch", type=int, default=cpu.batch_size)
    p.add_argument("--ks", default="4,8,16")
    p.add_argument("--ft-lr", type=float, default=default_lr(fine_tune=False),
                   help="learning rate of the runs that start from the previous model")
    p.add_argument("--distill-weight", type=float, default=0.0,
                   help="distil from the previous model with this weight (0: not at all)")
    p.add_argument("--lovasz", type=float, default=0.0, help="Lovász-softmax weight")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--face-size", type=int, default=512, help="side of the synthetic faces, px")
    args = p.parse_args()
    set_torch_threads(args.threads)

    ks = [int(k) for k in args.ks.split(",")]
    pool = [faces("wild" if i % 4 == 3 else "studio", 1, args.face_size, 100 + i, 1)[0]
            for i in range(ks[-1])]
    unlabeled = [im for im, _ in faces("studio", 24, args.face_size, seed=2, workers=1)]
    heldout = (faces("studio", 12, args.face_size, seed=3, workers=1)
               + faces("wild", 4, args.face_size, seed=3, workers=1))
    recipe = cpu.replace(time_budget_s=args.seconds, batch_size=args.batch, input_size=args.size,
                         loss=LossConfig(lovasz_weight=args.lovasz))
    previous: Checkpoint | None = None
    for k in ks:
        labelled = pool[:k][max(2, k // 5):]  # the worker keeps a fifth (>= 2) for validation
        run_recipe, run = recipe, {}
        if previous is not None:
            run_recipe, run = recipe.replace(lr=args.ft_lr), {"init": previous}
            if args.distill_weight > 0:
                run_recipe = run_recipe.replace(distill=DistillConfig(weight=args.distill_weight),
                                                unlabeled_batch=max(1, args.batch // 2))
                run.update(teacher=previous, unlabeled=unlabeled)
        started = time.perf_counter()
        result = train(labelled, None, run_recipe, **run)
        seconds = time.perf_counter() - started
        previous = Checkpoint(result.model, result.config, result.labels, result.meta)
        scores = evaluate(Predictor(result.model, result.config, result.labels, result.meta),
                          heldout)
        print(json.dumps({"k": k, "train_images": len(labelled), "steps": result.meta["steps"],
                          "seconds": round(seconds, 1), "heldout_f1": round(scores["mean_f1"], 4),
                          "size": args.size, "budget_s": args.seconds, "batch": args.batch,
                          "ft_lr": args.ft_lr, "distill_weight": args.distill_weight,
                          "lovasz": args.lovasz}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
