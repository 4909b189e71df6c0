"""Thin and small parts: which loss and sampling let the parser find earrings and necklaces.

Each variant trains on the synthetic face stream (:class:`model.prior.SynthFaceStream`, fresh
faces every step, both styles), from random weights or, with ``--init CKPT``, from a
checkpoint (the shipped prior), for the same steps or seconds; then per-class F1 on held-out
faces of both styles (:func:`model.prior.score_prior`), with the thin classes (``ear_r``,
``neck_l``), the glasses and the brows called out.

A variant is ``+``-joined tokens on top of the recipe's defaults (:class:`model.losses.LossConfig`:
thin classes weighted :data:`model.losses.THIN_WEIGHT`, edge BCE 1, edge-pixel CE 1):

* ``base``: the defaults;
* ``wN``: thin classes weighted N in the cross-entropy (``w8``);
* ``boostP``: a face with no thin part is redrawn with probability P (``boost0.8``);
* ``lovaszX``: add the Lovász-softmax term with weight X (``lovasz0.5``);
* ``edgeX``: edge BCE weight X and edge-pixel CE weight X (``edge0`` turns the edge loss off);
* ``noatt``: no self-attention (fresh models only);
* ``fine``: the stride-2 fine head (:class:`model.net.heads.FineHead`), added to ``--init``'s
  model when there is one.

    .venv/bin/python bench/thin_parts.py --init assets/face-prior.pt --steps 150 \\
        --variants base,w8,boost0.8,w8+boost0.8 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, table  # noqa: E402

from model.checkpoint import load_checkpoint  # noqa: E402
from model.devices import set_torch_threads  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.net import ParserConfig  # noqa: E402
from model.prior import pretrain, score_prior  # noqa: E402
from model.recipe import TrainRecipe  # noqa: E402

CALLED_OUT = ("ear_r", "neck_l", "eye_g", "l_brow", "r_brow", "u_lip")


def cell(value: float | None) -> str:
    """F1 with two decimals; "–" where the class was neither present nor predicted."""
    return "–" if value is None else f"{value:.2f}"


def parse_variant(name: str) -> tuple[LossConfig, float, dict[str, bool]]:
    """``name`` → (loss config, rare boost, config changes)."""
    loss, boost, arch = LossConfig(), 0.0, {}
    for token in name.split("+"):
        if token == "base":
            continue
        if token == "noatt":
            arch["attention"] = False
        elif token == "fine":
            arch["fine_head"] = True
        elif token.startswith("boost"):
            boost = float(token[5:])
        elif token.startswith("lovasz"):
            loss = replace(loss, lovasz_weight=float(token[6:]))
        elif token.startswith("edge"):
            w = float(token[4:])
            loss = replace(loss, edge_weight=w, edge_ce_weight=w)
        elif token.startswith("w"):
            loss = loss.with_thin_weight(float(token[1:]))
        else:
            raise SystemExit(f"unknown variant token {token!r}")
    return loss, boost, arch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="base,w8,boost0.8,w8+boost0.8")
    p.add_argument("--init", help="checkpoint to start from (default: random weights)")
    p.add_argument("--config", default="small")
    p.add_argument("--size", type=int, default=192, help="input side of a fresh model")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--seconds", type=float, help="time budget per variant")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--eval-faces", type=int, default=16, help="held-out faces per style")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    set_torch_threads(args.threads)
    init_config = load_checkpoint(args.init).config if args.init else None
    rows, data = [], []
    for variant in args.variants.split(","):
        loss, boost, arch = parse_variant(variant)
        for seed in (int(s) for s in args.seeds.split(",")):
            recipe = TrainRecipe(steps=args.steps, time_budget_s=args.seconds,
                                 batch_size=args.batch_size, seed=seed, loss=loss)
            config = (init_config.replace(**arch) if init_config is not None
                      else ParserConfig.preset(args.config, input_size=args.size, **arch))
            t0 = time.perf_counter()
            result = pretrain(config, recipe, init=args.init, rare_boost=boost)
            seconds = time.perf_counter() - t0
            predictor = Predictor(result.model, result.config, result.labels)
            scores = score_prior(predictor, count=args.eval_faces, size=result.config.input_size,
                                 first=100)
            f1 = scores["per_class_f1"]
            by = scores["by_style"]
            rows.append([variant, seed, result.meta["steps"], f"{seconds:.0f}",
                         *(cell(f1[c]) for c in CALLED_OUT),
                         "/".join(cell(by[s]["per_class_f1"]["ear_r"]) for s in by),
                         "/".join(cell(by[s]["per_class_f1"]["neck_l"]) for s in by),
                         f"{scores['mean_f1']:.3f}"])
            data.append({"variant": variant, "seed": seed, "steps": result.meta["steps"],
                         "seconds": seconds, "scores": scores})
            print(" | ".join(str(c) for c in rows[-1]), flush=True)
    headers = ["variant", "seed", "steps", "s", *CALLED_OUT, "ear_r studio/wild",
               "neck_l studio/wild", "mean F1"]
    start = f"from {args.init}" if args.init else f"{args.config} at {args.size} px, random init"
    emit("thin_parts", f"Thin parts, {start}, {args.steps} steps", table(headers, rows),
         args.out, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
