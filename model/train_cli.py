"""``train``, ``evaluate`` and ``predict`` sub-commands (docs/ARCHITECTURE.md,
"Command line").

Flags of ``train`` that set the training recipe default to ``None``: the
:class:`model.recipe.TrainRecipe` defaults then apply (torch is imported only when a
command runs, so the parser is built without it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import FacetError

if TYPE_CHECKING:
    import torch

    from model.recipe import TrainRecipe


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``evaluate`` and ``predict`` to ``sub``."""
    p = sub.add_parser("train", help="train or fine-tune the face parser")
    p.add_argument("--data", required=True, type=Path, help="CelebAMask-HQ tree with labels")
    p.add_argument("--out", required=True, type=Path, help="checkpoint file to write")
    p.add_argument("--config", default="small", choices=("small", "paper"))
    p.add_argument("--steps", type=int,
                   help="optimiser steps (with --seconds: at most this many; default: "
                        "TrainRecipe in model/recipe.py)")
    p.add_argument("--seconds", type=float,
                   help="train for this many seconds, at most --steps steps (the learning-rate "
                        "schedule follows the clock)")
    p.add_argument("--init", type=Path, help="checkpoint to start from")
    p.add_argument("--distill-from", type=Path, help="teacher checkpoint for self-distillation")
    p.add_argument("--ema-teacher", action="store_const", const=True,
                   help="distil from a moving average of the model itself")
    p.add_argument("--unlabeled", type=Path, help="folder (or tree) of unlabelled images")
    p.add_argument("--distill-weight", type=float,
                   help="weight of the KL term (default: TrainRecipe's, measured best in "
                        "docs/BENCHMARKS.md)")
    p.add_argument("--distill-confidence", type=float,
                   help="distil only where the teacher's top class is this likely (0-1) and "
                        "agrees with the label")
    p.add_argument("--lovasz", type=float, metavar="WEIGHT",
                   help="add the Lovász-softmax loss with this weight (default: off)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate (default: by optimizer)")
    p.add_argument("--input-size", type=int, help="override the preset's input size")
    p.add_argument("--backbone-weights", type=Path,
                   help="local torchvision ResNet state dict to initialise the backbone")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores, at most 8)")
    p.add_argument("--no-amp", dest="amp", action="store_const", const=False,
                   help="train in float32")
    p.set_defaults(func=run_train)

    p = sub.add_parser("evaluate", help="per-class F1 and mean F1 of a checkpoint")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--data", required=True, type=Path, help="CelebAMask-HQ tree with labels")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser("predict", help="write label-map PNGs for a folder of images")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path, help="image folder (or tree)")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int)
    p.set_defaults(func=run_predict)


def _cpu_threads(device: torch.device, threads: int | None) -> None:
    """``--threads`` (default: :func:`model.devices.default_threads`) when running on a CPU;
    this process's one thread setting, made here at its edge."""
    from model.devices import set_torch_threads

    if device.type == "cpu":
        set_torch_threads(threads)


def _progress(total: int, desc: str):  # -> tqdm
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step" if desc == "train" else "img",
                file=sys.stderr, dynamic_ncols=True, disable=None)


def train_recipe(args: argparse.Namespace) -> TrainRecipe:
    """The recipe the ``train`` flags ask for: :class:`TrainRecipe` defaults, with each flag
    that was given applied over them. Flags are checked here, each error naming its flag."""
    from dataclasses import replace

    from model.recipe import TrainRecipe

    if (args.steps is not None and args.steps < 1) or \
            (args.batch_size is not None and args.batch_size < 1):
        raise FacetError("--steps and --batch-size must be at least 1")
    if args.seconds is not None and not args.seconds > 0:
        raise FacetError("--seconds must be positive")
    if args.distill_confidence is not None and not 0.0 <= args.distill_confidence <= 1.0:
        raise FacetError("--distill-confidence must be between 0 and 1")
    if (args.lovasz or 0) < 0 or (args.distill_weight or 0) < 0:
        raise FacetError("--lovasz and --distill-weight must not be negative")
    if args.distill_confidence is not None and not (args.distill_from or args.ema_teacher):
        raise FacetError("--distill-confidence needs a teacher: --distill-from CKPT or "
                         "--ema-teacher")
    recipe = TrainRecipe()
    return recipe.replace(
        **_given([("steps", args.steps), ("time_budget_s", args.seconds),
                  ("batch_size", args.batch_size), ("lr", args.lr), ("seed", args.seed),
                  ("amp", args.amp), ("input_size", args.input_size)]),
        distill=replace(recipe.distill, **_given([("weight", args.distill_weight),
                                                  ("confidence", args.distill_confidence),
                                                  ("ema_teacher", args.ema_teacher)])),
        loss=replace(recipe.loss, **_given([("lovasz_weight", args.lovasz)])))


def _given(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """The ``(field, flag value)`` pairs whose flag was given, as a dict."""
    return {k: v for k, v in pairs if v is not None}


def run_train(args: argparse.Namespace) -> int:
    from core.labels import CELEBAMASK
    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.dataset import load_images, load_tree
    from model.devices import resolve_device
    from model.train import train

    device = resolve_device(args.device)
    recipe = train_recipe(args)
    if args.out.exists() and args.out.is_dir():
        raise FacetError(f"--out {args.out} is a folder; give a checkpoint file name")
    _cpu_threads(device, args.threads)
    init = load_checkpoint(args.init) if args.init else None
    teacher = load_checkpoint(args.distill_from) if args.distill_from else None
    labels = init.labels if init else CELEBAMASK
    config = None
    if init is None:
        weights = {"backbone_weights": str(args.backbone_weights)} if args.backbone_weights else {}
        config = recipe.fresh_config(args.config, labels, **weights)
    elif recipe.input_size and recipe.input_size != init.config.input_size:
        raise FacetError(f"--input-size {args.input_size} differs from the --init checkpoint's "
                         f"{init.config.input_size}")
    size = (init.config if init else config).input_size
    samples = load_tree(args.data, labels, size=size)
    unlabeled = load_images(args.unlabeled, size=size) if args.unlabeled else []
    bar = _progress(recipe.steps, "train")

    def on_step(step: int, total: int, losses: dict[str, float], rate: float) -> None:
        bar.total = total  # with --seconds: the steps that fit at the pace so far
        bar.set_postfix(loss=f"{losses['total']:.3f}", rate=f"{rate:.1f} img/s", refresh=False)
        bar.update(1)

    try:
        result = train(samples, config, recipe, init=init, teacher=teacher, unlabeled=unlabeled,
                       device=device, on_step=on_step, labels=labels)
    finally:
        bar.close()
    meta = dict(result.meta, data=str(args.data),
                init=str(args.init) if args.init else None,
                teacher=str(args.distill_from) if args.distill_from else None)
    save_checkpoint(args.out, result.model, result.config, result.labels, meta)
    final = result.meta["final_losses"]
    print(f"wrote {args.out} ({result.meta['steps']} steps, final loss {final['total']:.4f}, "
          f"{result.meta['images_per_second']:.1f} img/s)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from model.dataset import load_tree
    from model.evaluate import evaluate
    from model.inference import Predictor

    predictor = Predictor.load(args.checkpoint, device=args.device)
    _cpu_threads(predictor.device, args.threads)
    samples = load_tree(args.data, predictor.labels)
    bar = _progress(len(samples), "evaluate")
    try:
        scores = evaluate(predictor, samples, on_image=lambda n: bar.update(1))
    finally:
        bar.close()
    if args.json:
        print(json.dumps(scores))
        return 0
    print(f"{'class':<12} {'F1':>7}")
    for name, f1 in scores["per_class_f1"].items():
        print(f"{name:<12} {'-' if f1 is None else f'{100 * f1:.2f}':>7}")
    print(f"{'mean F1':<12} {100 * scores['mean_f1']:>7.2f}   (18 classes, background excluded; "
          f"{scores['n_images']} images, pixel accuracy {100 * scores['pixel_accuracy']:.2f})")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    from core.imageio import BadImageError, decode_image, encode_label_png, write_atomic
    from model.dataset import image_files
    from model.inference import Predictor

    files = image_files(args.images)
    if args.out.exists() and not args.out.is_dir():
        raise FacetError(f"--out {args.out} exists and is not a folder")
    predictor = Predictor.load(args.checkpoint, device=args.device)
    _cpu_threads(predictor.device, args.threads)
    stems = [f.stem for f in files]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise FacetError(f"several images share the file stem {dupes[0]!r}; outputs would clash")
    args.out.mkdir(parents=True, exist_ok=True)
    with _progress(len(files), "predict") as bar:
        for path in files:
            try:
                image = decode_image(path)
            except BadImageError as err:
                raise FacetError(f"{path.name}: {err}") from None
            label, _ = predictor.predict(image)
            write_atomic(args.out / f"{path.stem}.png", encode_label_png(label))
            bar.update(1)
    print(f"wrote {len(files)} label maps to {args.out}")
    return 0
