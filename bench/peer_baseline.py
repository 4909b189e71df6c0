"""Peer baseline: torchvision's FCN and DeepLabv3 heads and a BiSeNet-style real-time parser on
the same backbone and data, against the parser, at equal steps or at equal training time.

Rows (all on the parser's own ResNet trunk, ``small``: resnet18, random init, output stride 32;
all fed by the parser's batch stream, so data and augmentation are identical):

* parser (ours): ``build_face_parser`` with its full loss (weighted CE + edge terms) and the
  repo's recipe (AdamW, ``--lr``, warm-up, cosine decay).
* FCN head / DeepLabv3 head (torchvision): the head on the trunk's stride-32 features
  (torchvision cannot dilate resnet18, so DeepLabv3's atrous rates 12/24/36, meant for stride
  8, are scaled by 8/32 to 3/6/9); the repo's recipe and the same weighted cross-entropy
  (thin-class weights included), no edge terms.
* BiSeNet-style (its own recipe): BiSeNet v1 (``bench/bisenet.py``: spatial path, context
  path with attention refinement, feature fusion, two auxiliary heads) trained as BiSeNet
  usually is: SGD momentum 0.9, weight decay 5e-4, lr 1e-2, linear warm-up over 10 % of the
  steps then poly decay, OHEM cross-entropy (0.7, 1/16 of the pixels) on the output and on
  each auxiliary head. ``--lr`` does not change it.

Equal steps (default): every model makes ``--steps`` steps of the same batch size; the
"steps" and "train s" columns show what each took. ``--equal-time``: at each seed the parser
trains first, then every peer trains for the wall time the parser's run took (its schedule
follows the clock, at most 10 x the parser's steps); the "steps" column then shows how many
steps each fitted in that time. ``--seconds S``: every model, the parser too, trains S seconds
(150: the worker's CPU budget). ``--models parser,bisenet`` keeps some rows; ``--size`` sets
the input side.

    .venv/bin/python bench/peer_baseline.py --quick
    .venv/bin/python bench/peer_baseline.py --quick --equal-time
    .venv/bin/python bench/peer_baseline.py --quick --seconds 150 --size 160 --models parser,bisenet
    .venv/bin/python bench/peer_baseline.py --device cuda [--equal-time]
    .venv/bin/python bench/peer_baseline.py --tiny --threads 1 [--equal-time]   # smoke test
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import (StudioComparison, base_args, comparison_args, describe_host, emit,
                    infer_ms, mean_std, mode, score, setup, studio_comparison, table)  # noqa: E402
from bisenet import train_bisenet  # noqa: E402  (after common, which puts the repo on sys.path)
from torch import nn  # noqa: E402
from torchvision.models.segmentation.deeplabv3 import DeepLabHead  # noqa: E402
from torchvision.models.segmentation.fcn import FCNHead  # noqa: E402

from core.labels import CELEBAMASK, THIN_CLASSES, LabelSet  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.net import ParserConfig, build_face_parser  # noqa: E402
from model.net.backbone import ResNetBackbone  # noqa: E402
from model.net.network import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from model.recipe import TrainRecipe, default_lr  # noqa: E402
from model.train import train  # noqa: E402

PARSER = "parser (ours)"


class HeadOnBackbone(nn.Module):
    """A torchvision segmentation head on the deepest features of the parser's backbone.

    ``forward(x: B x 3 x H x W in [0, 1]) → {"logits": B x C x H x W}`` (what ``train`` and
    ``Predictor`` expect); ``config`` describes the backbone and input size.
    """

    def __init__(self, config: ParserConfig, head: str) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNetBackbone(config.backbone, config.output_stride)
        c4 = self.backbone.channels[-1]
        rates = tuple(r * 8 // config.output_stride for r in (12, 24, 36))
        self.head = DeepLabHead(c4, config.num_classes, rates) if head == "deeplabv3" \
            else FCNHead(c4, config.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        c4 = self.backbone((x - self.mean) / self.std)[-1]
        return {"logits": F.interpolate(self.head(c4), size=x.shape[-2:], mode="bilinear",
                                        align_corners=False)}


EQUAL_TIME_STEP_CAP = 10
"""In ``--equal-time`` mode a peer makes at most this many times the parser's steps (a run that
reaches the cap stops before its time is up; the table's "steps" column shows it)."""


@dataclass(frozen=True)
class Trained:
    """A trained model (eval mode, CPU) with what ``score`` needs, the ``steps`` it made in
    ``seconds`` of training, and its run's metadata (``meta``: the class weights to undo)."""

    model: nn.Module
    config: ParserConfig
    labels: LabelSet
    steps: int
    seconds: float
    meta: dict[str, Any] = field(default_factory=dict)


Trainer = Callable[[int, float | None], Trained]
"""``trainer(seed, seconds)``: a fresh model trained at ``seed``; with ``seconds``, for that
much wall time (equal-time mode), otherwise for the run's steps."""


def repo_trainer(make: Callable[[], nn.Module], loss: LossConfig, run: StudioComparison,
                 lr: float, workers: int | None, device: torch.device) -> Trainer:
    """Train ``make()`` with the repo's recipe (``model.train.train``) and ``loss``. With a
    time budget the step cap is :data:`EQUAL_TIME_STEP_CAP` x ``run.steps`` and the warm-up is
    scaled with it, so it stays the same share of the run as at equal steps."""
    def trainer(seed: int, seconds: float | None) -> Trained:
        torch.manual_seed(seed)
        model = make()
        recipe = TrainRecipe(steps=run.steps, seed=seed, batch_size=run.batch, lr=lr,
                             num_workers=workers, loss=loss)
        if seconds is not None:
            warmup = min(100, run.steps // 10)    # TrainRecipe's default at run.steps
            recipe = recipe.replace(steps=EQUAL_TIME_STEP_CAP * run.steps, time_budget_s=seconds,
                                    warmup=EQUAL_TIME_STEP_CAP * warmup)
        r = train(run.train_set, None, recipe, init=model, device=device)
        return Trained(r.model, r.config, r.labels, r.meta["steps"], r.meta["seconds"], r.meta)
    return trainer


def bisenet_trainer(run: StudioComparison, workers: int | None, device: torch.device) -> Trainer:
    """Train a fresh BiSeNet with its own recipe (:func:`bisenet.train_bisenet`); with a time
    budget, at most :data:`EQUAL_TIME_STEP_CAP` x ``run.steps`` steps (warm-up: 10 % of them,
    poly decay on the clock)."""
    def trainer(seed: int, seconds: float | None) -> Trained:
        cap = run.steps if seconds is None else EQUAL_TIME_STEP_CAP * run.steps
        model, meta = train_bisenet(run.train_set, run.size, cap, run.batch, seed, seconds,
                                    device, num_workers=workers)
        return Trained(model, model.config, CELEBAMASK, meta["steps"], meta["seconds"])
    return trainer


ROWS = {"parser": PARSER, "fcn": "FCN head (torchvision)",
        "deeplabv3": "DeepLabv3 head (torchvision)", "bisenet": "BiSeNet-style (its own recipe)"}
"""Short names for ``--models``."""


def trainers(run: StudioComparison, lr: float, workers: int | None,
             device: torch.device) -> dict[str, Trainer]:
    """The table's rows in training order (the parser first: equal-time mode needs its time)."""
    config = ParserConfig.small(input_size=run.size, edge_head=False)
    on_repo = lambda make, loss: repo_trainer(make, loss, run, lr, workers, device)  # noqa: E731
    return {
        PARSER: on_repo(lambda: build_face_parser(ParserConfig.small(input_size=run.size)),
                        LossConfig()),
        ROWS["fcn"]: on_repo(lambda: HeadOnBackbone(config, "fcn"), LossConfig.plain()),
        ROWS["deeplabv3"]: on_repo(lambda: HeadOnBackbone(config, "deeplabv3"),
                                   LossConfig.plain()),
        ROWS["bisenet"]: bisenet_trainer(run, workers, device),
    }


def chosen_rows(wanted: str | None) -> list[str]:
    """The table rows named (by :data:`ROWS` short names) in ``wanted``: all for None; a
    ``SystemExit`` naming the choices for an unknown one."""
    if not wanted:
        return list(ROWS.values())
    names = [n.strip() for n in wanted.split(",")]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown --models {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    return [ROWS[n] for n in names]


def result_row(t: Trained, run: StudioComparison, device: torch.device) -> dict:
    """Scores of ``t`` on the studio and wild test sets (mean F1, thin-class F1) with its steps
    and training seconds."""
    sc = score(t.model, t.config, t.labels, device, run.tests, t.meta)
    st = sc["studio"]["per_class_f1"]
    return {"studio": sc["studio"]["mean_f1"], "wild": sc["wild"]["mean_f1"],
            **{n: st[n] for n in THIN_CLASSES}, "steps": t.steps, "seconds": t.seconds}


def table_rows(runs: dict[str, list[dict]], info: dict[str, tuple[float, float]]) -> list[list]:
    """One markdown row per model that finished a run: F1s as mean ± std over seeds, mean
    steps and training seconds, parameters (M) and forward ms."""
    rows = []
    for name, rs in runs.items():
        thin = lambda key: mean_std([r[key] for r in rs if r[key] is not None])  # noqa: E731
        rows.append([name, mean_std([r["studio"] for r in rs]), mean_std([r["wild"] for r in rs]),
                     *map(thin, THIN_CLASSES), f"{statistics.fmean(r['steps'] for r in rs):.0f}",
                     f"{statistics.fmean(r['seconds'] for r in rs):.1f}",
                     f"{info[name][0]:.1f}", f"{info[name][1]:.1f}", len(rs)])
    return rows


def main() -> int:
    p = comparison_args(base_args(__doc__.split("\n\n")[0]))
    p.add_argument("--lr", type=float, default=default_lr(),
                   help="peak learning rate of the parser and the torchvision heads (default: "
                        "the recipe's from scratch; BiSeNet keeps its own 1e-2)")
    timing = p.add_mutually_exclusive_group()
    timing.add_argument("--equal-time", action="store_true",
                        help="train every peer for as long as the parser took at the same "
                             "seed (instead of the same number of steps)")
    timing.add_argument("--seconds", type=float,
                        help="train every model, the parser too, for this many seconds (the "
                             "worker's CPU budget is 150) instead of --steps steps")
    p.add_argument("--models", help="comma-separated subset of the rows: " + ", ".join(ROWS))
    args = p.parse_args()
    rows = chosen_rows(args.models)
    if args.equal_time and PARSER not in rows:
        p.error("--equal-time times the peers by the parser's run: keep parser in --models")
    device, stop = setup(args)
    run = studio_comparison(args, device, runs_per_seed=len(rows))
    models = {name: t for name, t in trainers(run, args.lr, args.loader_workers, device).items()
              if name in rows}
    runs: dict[str, list[dict]] = {}
    info: dict[str, tuple[float, float]] = {}
    stopped = None
    try:
        for seed in run.seeds:
            parser_seconds = None
            for name, trainer in models.items():
                run.budget.check()
                seconds = args.seconds or (parser_seconds if args.equal_time and name != PARSER
                                           else None)
                t = trainer(seed, seconds)
                if name == PARSER:
                    parser_seconds = t.seconds
                r = {"seed": seed, **result_row(t, run, device)}
                runs.setdefault(name, []).append(r)
                if name not in info:
                    info[name] = (sum(q.numel() for q in t.model.parameters()) / 1e6,
                                  infer_ms(t.model.eval(), run.size, device))
                thin = " ".join(f"{n} {r[n]}" for n in THIN_CLASSES)
                print(f"seed {seed} {name}: studio {100 * r['studio']:.2f} wild "
                      f"{100 * r['wild']:.2f} {thin} ({t.steps} steps, {t.seconds:.1f} s)",
                      flush=True)
    except (Exception, KeyboardInterrupt) as err:  # a stop prints a partial table below
        stopped = stop.report(err)

    budget = (f"equal time: {args.seconds:.0f} s each (at most "
              f"{EQUAL_TIME_STEP_CAP * run.steps} steps)" if args.seconds else
              f"equal time: the parser {run.steps} steps, each peer as long as the parser "
              f"took at its seed (at most {EQUAL_TIME_STEP_CAP * run.steps} steps)"
              if args.equal_time else f"equal steps: {run.steps} steps each")
    title = (f"Peer baseline ({mode(args)}, {budget}): resnet18 trunk (random init, stride 32) "
             f"at {run.size}², batch {run.batch}, lr {args.lr} (BiSeNet: its own recipe), "
             f"{len(run.train_set)} studio training faces, {len(run.tests['studio'])} test faces "
             f"per style; {describe_host(device)}; {time.time() - run.started:.0f} s"
             + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    emit("peer_baseline_equal_time" if args.equal_time or args.seconds else "peer_baseline", title,
         table(["model", "studio mean F1", "wild mean F1",
                *(f"studio {n} F1" for n in THIN_CLASSES), "steps", "train s",
                "params (M)", "forward ms (best of 7)", "seeds"], table_rows(runs, info)),
         args.out, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
