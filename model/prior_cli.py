"""The ``pretrain`` command: train the synthetic face prior (:mod:`model.prior`) and write it
as a checkpoint with its recipe and its per-class scores on held-out synthetic faces."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import FacetError

DEFAULT_STEPS = 3000
DEFAULT_RARE_BOOST = 0.8
"""Redraw 80 % of the faces that show no earring or necklace: at 1,500 steps from random
weights it raised necklace F1 from 0.55 to 0.68 and earring F1 from 0.25 to 0.30 (3 seeds, 100
held-out faces per style; docs/BENCHMARKS.md "Showing the thin parts more often")."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="train the face prior on an endless stream of "
                                        "synthetic faces")
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    p.add_argument("--config", default="small", choices=("small", "mobile", "paper"),
                   help="preset of a fresh prior (default small, as the shipped one)")
    p.add_argument("--init", type=Path,
                   help="go on training this checkpoint (its config and input size are kept)")
    p.add_argument("--rare-boost", type=float, default=DEFAULT_RARE_BOOST,
                   help="probability of redrawing a face that shows no earring or necklace "
                        f"(default {DEFAULT_RARE_BOOST}; 0: the generator's own frequencies)")
    p.add_argument("--fine-head", action="store_true",
                   help="refine the logits from the image at --fine-stride (added to --init's "
                        "model, or replacing its fine head of another stride)")
    p.add_argument("--fine-stride", type=int, choices=(1, 2), default=None,
                   help="resolution of the fine head: 1 = full (it lifted earring and necklace "
                        "F1 most, docs/BENCHMARKS.md), 2 = half; default: --init's fine head's, "
                        "else 1")
    p.add_argument("--thin-weight", type=float, default=None,
                   help="cross-entropy weight of the thin classes (ear_r, neck_l; default: the "
                        "recipe's)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"optimiser steps (default {DEFAULT_STEPS}; with --seconds: at most)")
    p.add_argument("--seconds", type=float, help="stop after this many seconds of training")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--input-size", type=int, default=192,
                   help="input side of a fresh prior in pixels (default 192, as the shipped one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-faces", type=int, default=24,
                   help="held-out faces per style to score the prior on (default 24)")
    p.add_argument("--tune-faces", type=int, default=None,
                   help="held-out faces per style the logit adjustment is chosen on (default "
                        "60; they are not the scored ones)")
    p.add_argument("--half", action="store_true", help="store the weights as float16")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores, at most 8)")
    p.set_defaults(func=run_pretrain)


def format_scores(scores: dict) -> str:
    """The per-class F1 table of :func:`model.prior.score_prior` as Markdown."""
    styles = list(scores["by_style"])
    rows = ["| class | " + " | ".join(styles) + " | both |", "|---" * (len(styles) + 2) + "|"]
    for name, f1 in scores["per_class_f1"].items():
        cells = [scores["by_style"][s]["per_class_f1"].get(name) for s in styles] + [f1]
        rows.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in cells) + " |")
    rows.append("| **mean F1** | " + " | ".join(f"{scores['by_style'][s]['mean_f1']:.3f}" for s in styles)
                + f" | {scores['mean_f1']:.3f} |")
    return "\n".join(rows)


def run_pretrain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.devices import resolve_device, set_torch_threads
    from model.inference import Predictor
    from model.losses import LossConfig
    from model.net import ParserConfig
    from model.prior import (STREAM_AUGMENT, TUNING_FACES, pretrain, score_prior,
                             tune_logit_adjustment)
    from model.recipe import TrainRecipe

    tune_faces = TUNING_FACES if args.tune_faces is None else args.tune_faces
    if min(args.steps, args.batch_size, args.eval_faces, tune_faces) < 1:
        raise FacetError("--steps, --batch-size, --eval-faces and --tune-faces must be at least 1")
    if args.out.is_dir():
        raise FacetError(f"--out {args.out} is a folder; give a checkpoint file name")
    device = resolve_device(args.device)
    if device.type == "cpu":
        set_torch_threads(args.threads)
    if args.init is not None and not args.init.is_file():
        raise FacetError(f"--init {args.init} is not a checkpoint file")
    config = (load_checkpoint(args.init).config if args.init
              else ParserConfig.preset(args.config, input_size=args.input_size))
    if args.fine_stride is not None and not args.fine_head:
        raise FacetError("--fine-stride sets the stride of the fine head: add --fine-head")
    if args.fine_head:
        stride = args.fine_stride or (config.fine_stride if config.fine_head else 1)
        config = config.replace(fine_head=True, fine_stride=stride)
    loss = LossConfig()
    if args.thin_weight is not None:
        loss = loss.with_thin_weight(args.thin_weight)
    recipe = TrainRecipe(steps=args.steps, time_budget_s=args.seconds,
                         batch_size=args.batch_size, seed=args.seed, loss=loss,
                         augment=STREAM_AUGMENT)
    bar = tqdm(total=args.steps, desc="pretrain", unit="step", file=sys.stderr,
               dynamic_ncols=True, disable=None)

    def on_step(step: int, total: int, losses: dict[str, float], rate: float) -> None:
        bar.total = total
        bar.set_postfix(loss=f"{losses['total']:.3f}", rate=f"{rate:.1f} img/s", refresh=False)
        bar.update(1)

    try:
        result = pretrain(config, recipe, device=device, on_step=on_step, init=args.init,
                          rare_boost=args.rare_boost)
    finally:
        bar.close()
    strength = tune_logit_adjustment(result.model, result.config, result.labels, result.meta,
                                     count=tune_faces, device=device)
    meta = dict(result.meta, logit_adjustment=strength, tuning_faces=tune_faces)
    scores = score_prior(Predictor(result.model, result.config, result.labels, meta,
                                   device=device),
                         count=args.eval_faces, size=result.config.input_size)
    meta.update(metrics=scores, command=" ".join(sys.argv))
    save_checkpoint(args.out, result.model, result.config, result.labels, meta, half=args.half)
    print(format_scores(scores))
    print(f"wrote {args.out} ({result.meta['steps']} steps, {result.meta['seconds']:.0f} s, "
          f"held-out mean F1 {scores['mean_f1']:.3f}, logit adjustment {strength:g})")
    return 0
