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
* ``earN``: the earring alone weighted N (``ear40``; after ``wN`` to override it);
* ``boostP``: a face with no thin part is redrawn with probability P (``boost0.8``);
* ``lovaszX``: add the Lovász-softmax term with weight X (``lovasz0.5``);
* ``edgeX``: edge BCE weight X and edge-pixel CE weight X (``edge0`` turns the edge loss off);
* ``noatt``: no self-attention (fresh models only);
* ``noedge``: no edge head and no edge terms in the loss (fresh models only);
* ``nowarp``: the stream's faces are not warped (no random scale, rotation or shift; the
  generator's own pose varies them); ``noblur``: no extra blur on them;
* ``extras``: the opt-in ``hand`` / ``mask`` classes as well (21 classes; fresh models only);
* ``fine``: the stride-2 fine head (:class:`model.net.heads.FineHead`), added to ``--init``'s
  model when there is one; ``fine1``: the same at full resolution (stride 1).

Each model is scored at every ``--adjust`` strength (how much of the class weights the
prediction undoes, :mod:`model.calibration`; ``recorded``, the default: what the app uses;
``tuned``: the strength chosen on other held-out faces, as ``pretrain`` records it);
``--score A.pt,B.pt`` scores saved models (``--save-dir``) instead of training. A few dozen
faces hold few earrings: ``--eval-faces 100`` gives steadier thin-class numbers than 24;
``--eval-size`` scores models of different input sizes on the same faces. Models predict as
the app does, from each face and its mirror image; ``--no-flip`` from the face alone.

    .venv/bin/python bench/thin_parts.py --init assets/face-prior.pt --steps 150 \\
        --variants base,w8,boost0.8,w8+boost0.8 --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, table  # noqa: E402

from model.augment import AugmentConfig  # noqa: E402
from model.calibration import recorded_strength  # noqa: E402
from core.labels import CELEBAMASK, LabelSet  # noqa: E402
from model.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from model.devices import set_torch_threads  # noqa: E402
from model.inference import Predictor  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.net import ParserConfig  # noqa: E402
from model.prior import (  # noqa: E402
    TUNING_FACES, TUNING_FIRST, pretrain, score_prior, tune_logit_adjustment)
from model.recipe import TrainRecipe  # noqa: E402

CALLED_OUT = ("ear_r", "neck_l", "eye_g", "l_brow", "r_brow", "u_lip")


def cell(value: float | None) -> str:
    """F1 with two decimals; "–" where the class was neither present nor predicted."""
    return "–" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class Variant:
    """What a variant name changes: the loss, the rare boost, the model config, the stream's
    augmentation and the classes."""

    loss: LossConfig = field(default_factory=LossConfig)
    boost: float = 0.0
    arch: dict[str, bool | int] = field(default_factory=dict)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    labels: LabelSet = CELEBAMASK


def parse_variant(name: str) -> Variant:
    """``name`` (``+``-joined tokens, see the module docstring) → :class:`Variant`."""
    loss, boost, arch, augment, labels = LossConfig(), 0.0, {}, AugmentConfig(), CELEBAMASK
    for token in name.split("+"):
        if token == "base":
            continue
        if token == "noatt":
            arch["attention"] = False
        elif token == "noedge":
            arch["edge_head"] = False
            loss = replace(loss, edge_weight=0.0, edge_ce_weight=0.0)
        elif token in ("fine", "fine1"):
            arch.update(fine_head=True, fine_stride=2 if token == "fine" else 1)
        elif token == "nowarp":
            augment = replace(augment, scale=(1.0, 1.0), rotation_deg=0.0, shift=0.0)
        elif token == "extras":
            labels = LabelSet.celebamask(extras=True)
        elif token == "noblur":
            augment = replace(augment, blur_prob=0.0)
        elif token.startswith("boost"):
            boost = float(token[5:])
        elif token.startswith("ear") and token[3:].replace(".", "", 1).isdigit():
            weight = float(token[3:])
            if weight <= 0:
                raise SystemExit(f"{token}: a class weight must be positive")
            loss = replace(loss, class_weights={**loss.class_weights, "ear_r": weight})
        elif token.startswith("lovasz"):
            loss = replace(loss, lovasz_weight=float(token[6:]))
        elif token.startswith("edge"):
            w = float(token[4:])
            loss = replace(loss, edge_weight=w, edge_ce_weight=w)
        elif token.startswith("w"):
            loss = loss.with_thin_weight(float(token[1:]))
        else:
            raise SystemExit(f"unknown variant token {token!r}")
    return Variant(loss, boost, arch, augment, labels)


@dataclass(frozen=True)
class FaceCounts:
    """Which held-out faces score a model: ``eval`` per style from face ``first`` on, rendered
    at ``size`` px (``None``: the model's input size; the model predicts at its own input size
    and is scored at ``size``), and ``tune`` per style (from :data:`model.prior.TUNING_FIRST`
    on, at the input size) to choose the ``tuned`` strength on."""

    eval: int
    tune: int
    first: int
    size: int | None = None


def score_rows(model: nn.Module, config: ParserConfig, labels: LabelSet, meta: dict[str, Any],
               label: str, seed: int, steps: int, seconds: float, strengths: list[str],
               faces: FaceCounts, data: list[dict], flip_average: bool = True) -> list[list]:
    """One table row per logit-adjustment strength for one model: a number, ``"recorded"``
    (what the app uses: the checkpoint's, inherited by runs from it, else the default) or
    ``"tuned"`` (what :func:`model.prior.tune_logit_adjustment` picks on other held-out faces).
    ``flip_average``: predict as the app does (the mean over the image and its mirror image)
    or from the image alone (as every table before 2026-12-03 19:30 UTC)."""
    rows = []
    for text in strengths:
        strength = (tune_logit_adjustment(model, config, labels, meta, count=faces.tune,
                                          flip_average=flip_average)
                    if text == "tuned" else recorded_strength(meta) if text == "recorded"
                    else float(text))
        predictor = Predictor(model, config, labels, meta, logit_adjustment=strength,
                              flip_average=flip_average)
        size = config.input_size if faces.size is None else faces.size
        scores = score_prior(predictor, count=faces.eval, size=size,
                             first=faces.first)
        f1, by = scores["per_class_f1"], scores["by_style"]
        shown = f"{text}: {strength:g}" if text in ("tuned", "recorded") else f"{strength:g}"
        rows.append([label, seed, steps, f"{seconds:.0f}", shown,
                     *(cell(f1[c]) for c in CALLED_OUT),
                     "/".join(cell(by[s]["per_class_f1"]["ear_r"]) for s in by),
                     "/".join(cell(by[s]["per_class_f1"]["neck_l"]) for s in by),
                     f"{scores['mean_f1']:.3f}"])
        data.append({"variant": label, "seed": seed, "steps": steps, "seconds": seconds,
                     "flip_average": flip_average, "adjust": strength, "tuned": text == "tuned",
                     "recorded": text == "recorded",
                     "scores": scores})
        print(" | ".join(str(c) for c in rows[-1]), flush=True)
    return rows


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
    p.add_argument("--first", type=int, default=100,
                   help="first held-out face scored (the tables use 100)")
    p.add_argument("--eval-size", type=int,
                   help="render the scored faces at this side in px (default: each model's "
                        "input size); models of different input sizes compare at one size")
    p.add_argument("--tune-faces", type=int,
                   help="held-out faces per style the 'tuned' strength is chosen on "
                        f"(default {TUNING_FACES}, as pretrain; the tables before 2026-12-03 "
                        "13:00 UTC chose on 24)")
    p.add_argument("--adjust", default="recorded",
                   help="comma-separated logit-adjustment strengths to score each model at "
                        "(model.calibration; 0 = raw logits; 'recorded' (default): the one the "
                        "app uses; 'tuned': the one that does best on held-out faces from "
                        f"{TUNING_FIRST} on, as pretrain records)")
    p.add_argument("--no-flip", action="store_true",
                   help="predict from each face alone, not from it and its mirror image as the "
                        "app does (the tables before 2026-12-03 19:30 UTC)")
    p.add_argument("--score", help="comma-separated checkpoints to score instead of training")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path)
    p.add_argument("--save-dir", type=Path,
                   help="also write each trained model there as VARIANT-sSEED.pt (to score later)")
    args = p.parse_args()
    set_torch_threads(args.threads)
    strengths = args.adjust.split(",")
    bad = [x for x in strengths
           if x not in ("tuned", "recorded") and not x.replace(".", "", 1).isdigit()]
    if bad:
        raise SystemExit(f"--adjust takes numbers, 'recorded' or 'tuned', not {', '.join(bad)}")
    tune_faces = TUNING_FACES if args.tune_faces is None else args.tune_faces
    eval_size = 1 if args.eval_size is None else args.eval_size
    if min(args.eval_faces, tune_faces, eval_size) < 1 or args.first < 0:
        raise SystemExit("--eval-faces, --tune-faces and --eval-size must be at least 1, "
                         "--first at least 0")
    tune_last = TUNING_FIRST + tune_faces
    overlaps = args.first < tune_last and args.first + args.eval_faces > TUNING_FIRST
    if "tuned" in strengths and overlaps:
        raise SystemExit(f"--first {args.first} + --eval-faces {args.eval_faces} would score faces "
                         f"{TUNING_FIRST}-{tune_last - 1}, which the 'tuned' strength is chosen on")
    faces = FaceCounts(args.eval_faces, tune_faces, args.first, args.eval_size)
    rows: list[list] = []
    data: list[dict] = []
    if args.score:
        for path in args.score.split(","):
            ckpt = load_checkpoint(path)
            rows += score_rows(ckpt.model, ckpt.config, ckpt.labels, ckpt.meta, Path(path).stem,
                               ckpt.meta.get("seed", 0), ckpt.meta.get("steps", 0),
                               ckpt.meta.get("seconds", 0.0), strengths, faces, data,
                               not args.no_flip)
    init_config = load_checkpoint(args.init).config if args.init else None
    for variant in ([] if args.score else args.variants.split(",")):
        v = parse_variant(variant)
        for seed in (int(s) for s in args.seeds.split(",")):
            recipe = TrainRecipe(steps=args.steps, time_budget_s=args.seconds,
                                 batch_size=args.batch_size, seed=seed, loss=v.loss,
                                 augment=v.augment)
            config = (init_config.replace(**v.arch) if init_config is not None
                      else ParserConfig.preset(args.config, v.labels, input_size=args.size,
                                               **v.arch))
            t0 = time.perf_counter()
            result = pretrain(config, recipe, init=args.init, rare_boost=v.boost,
                              labels=v.labels)
            seconds = time.perf_counter() - t0
            if args.save_dir is not None:
                args.save_dir.mkdir(parents=True, exist_ok=True)
                save_checkpoint(args.save_dir / f"{variant}-s{seed}.pt", result.model,
                                result.config, result.labels, result.meta)
            rows += score_rows(result.model, result.config, result.labels, result.meta, variant,
                               seed, result.meta["steps"], seconds, strengths, faces, data,
                               not args.no_flip)
    headers = ["variant", "seed", "steps", "s", "adjust", *CALLED_OUT, "ear_r studio/wild",
               "neck_l studio/wild", "mean F1"]
    title = (f"saved models {args.score}" if args.score else
             f"from {args.init}, {args.steps} steps" if args.init else
             f"{args.config} at {args.size} px, random init, {args.steps} steps")
    emit("thin_parts", f"Thin parts, {title}", table(headers, rows), args.out, data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
