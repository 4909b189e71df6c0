"""Peer baseline: torchvision's FCN and DeepLabv3 heads on the same backbone, same data, same
budget, against the parser.

Backbone: the parser's own ResNet trunk (``small``: resnet18, random init, output stride 32;
torchvision cannot dilate resnet18, so DeepLabv3's atrous rates 12/24/36, meant for stride 8,
are scaled by 8/32 to 3/6/9). The baselines are trained with the same weighted cross-entropy
(thin-class weights included) but no edge terms; the parser with its full loss.

    .venv/bin/python bench/peer_baseline.py --quick
    .venv/bin/python bench/peer_baseline.py --device cuda
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import (base_args, describe_host, emit, infer_ms, mean_std, mode, score, setup,
                    studio_comparison, table)  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.models.segmentation.deeplabv3 import DeepLabHead  # noqa: E402
from torchvision.models.segmentation.fcn import FCNHead  # noqa: E402

from core.labels import THIN_CLASSES  # noqa: E402
from model.losses import LossConfig  # noqa: E402
from model.net import ParserConfig, build_face_parser  # noqa: E402
from model.net.backbone import ResNetBackbone  # noqa: E402
from model.net.network import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from model.recipe import TrainRecipe, default_lr  # noqa: E402
from model.train import train  # noqa: E402


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


def main() -> int:
    p = base_args(__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int)
    p.add_argument("--seeds", type=int)
    p.add_argument("--lr", type=float, default=default_lr(),
                   help="peak learning rate of every model (default: the recipe's from scratch)")
    args = p.parse_args()
    device, stop = setup(args)
    run = studio_comparison(args, device, runs_per_seed=3)
    size, steps, batch, seeds = run.size, run.steps, run.batch, run.seeds
    train_set, tests, budget, t0 = run.train_set, run.tests, run.budget, run.started
    config = ParserConfig.small(input_size=size, edge_head=False)
    models = {
        "parser (ours)": lambda: build_face_parser(ParserConfig.small(input_size=size)),
        "FCN head (torchvision)": lambda: HeadOnBackbone(config, "fcn"),
        "DeepLabv3 head (torchvision)": lambda: HeadOnBackbone(config, "deeplabv3"),
    }
    runs: dict[str, list[dict]] = {}
    info: dict[str, tuple[float, float]] = {}
    stopped = None
    try:
        for seed in range(seeds):
            for name, make in models.items():
                budget.check()
                torch.manual_seed(seed)
                model = make()
                loss = LossConfig() if name.startswith("parser") else LossConfig.plain()
                recipe = TrainRecipe(steps=steps, seed=seed, batch_size=batch, lr=args.lr,
                                     num_workers=args.loader_workers, loss=loss)
                r = train(train_set, None, recipe, init=model, device=device)
                sc = score(r.model, r.config, r.labels, device, tests)
                st = sc["studio"]["per_class_f1"]
                runs.setdefault(name, []).append({
                    "studio": sc["studio"]["mean_f1"], "wild": sc["wild"]["mean_f1"],
                    **{n: st[n] for n in THIN_CLASSES}, "seconds": r.meta["seconds"]})
                if name not in info:
                    r.model.eval()
                    info[name] = (sum(q.numel() for q in r.model.parameters()) / 1e6,
                                  infer_ms(r.model, size, device))
                thin = " ".join(f"{n} {st[n]}" for n in THIN_CLASSES)
                print(f"seed {seed} {name}: studio {100 * sc['studio']['mean_f1']:.2f} wild "
                      f"{100 * sc['wild']['mean_f1']:.2f} {thin} ({r.meta['seconds']:.0f} s)",
                      flush=True)
    except (Exception, KeyboardInterrupt) as err:  # a stop prints a partial table below
        stop.report(err)

    rows = []
    for name in models:
        rs = runs.get(name, [])
        if not rs:
            continue
        thin = lambda key: mean_std([r[key] for r in rs if r[key] is not None])  # noqa: E731
        rows.append([name, mean_std([r["studio"] for r in rs]), mean_std([r["wild"] for r in rs]),
                     *map(thin, THIN_CLASSES), f"{info[name][0]:.1f}",
                     f"{info[name][1]:.1f}", len(rs)])
    title = (f"Peer baseline ({mode(args)}): resnet18 trunk (random init, "
             f"stride 32) at {size}², {steps} steps, batch {batch}, lr {args.lr}, {len(train_set)} studio "
             f"training faces, {len(tests['studio'])} test faces per style; {describe_host(device)}; "
             f"{time.time() - t0:.0f} s" + (f"; STOPPED EARLY ({stopped})" if stopped else ""))
    emit("peer_baseline", title,
         table(["model", "studio mean F1", "wild mean F1",
                *(f"studio {n} F1" for n in THIN_CLASSES),
                "params (M)", "forward ms (best of 7)", "seeds"], rows), args.out, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
