"""A BiSeNet-style real-time face parser (BiSeNet v1, Yu et al., ECCV 2018) as a peer baseline.

Written for ``bench/peer_baseline.py``: what a user would pick instead of the parser, on the
parser's own ResNet trunk (random init, output stride 32) and the parser's own batches
(:class:`model.dataset.BatchStream`, same augmentation), trained with BiSeNet's usual recipe:

    x ─┬─ spatial path: 3 x (stride-2 conv-bn-relu), 64 → 64 → 128 ch ──────────── sp (s8)
       └─ ResNet trunk → c3 (s16), c4 (s32) → context path:
            f32 = ARM(c4) + tail (GAP(c4), 1x1 conv) ; f16 = ARM(c3) + refine(up(f32))
            ctx = refine(up(f16))                                                   (s8)
    FFM(concat(sp, ctx)) → head → logits (upsampled x8);  aux heads on f16 and f32 (training)

Recipe (face-parsing code's BiSeNet settings; the paper itself used lr 2.5e-2, weight decay
1e-4): SGD momentum 0.9, weight decay 5e-4 (not on norm weights and biases), peak lr 1e-2,
linear warm-up over the first 10 % of the steps (at most 1000), then poly decay (power 0.9);
loss = OHEM cross-entropy (threshold 0.7, at least 1/16 of the pixels) on the output plus the
same on each auxiliary output.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.augment import AugmentConfig
from model.dataset import BatchStream
from model.devices import amp_dtype, autocast, available_cores, resolve_device
from model.net import ParserConfig
from model.net.backbone import ResNetBackbone
from model.net.network import IMAGENET_MEAN, IMAGENET_STD
from model.schedule import lr_factor, schedule_position
from model.train import iterate_batches, seed_everything

Sample = tuple[np.ndarray, np.ndarray]
"""``(image H x W x 3 uint8, label H x W uint8)``."""

CONTEXT_CHANNELS = 128
"""Width of the spatial path's output and of the context path (as in BiSeNet)."""
FUSED_CHANNELS = 256
"""Width of the feature fusion module's output."""
OHEM_THRESH = 0.7
"""OHEM keeps pixels whose probability of the true class is below this."""
LR = 1e-2
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
WARMUP_SHARE = 0.1
WARMUP_MAX = 1000


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """``B x cin x H x W`` → ``B x cout x H/stride x W/stride`` (padding ``kernel // 2``)."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinear resize of ``B x C x h x w`` to ``B x C x size``."""
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class SpatialPath(nn.Module):
    """Three stride-2 conv-bn-relu layers: ``B x 3 x H x W`` → ``B x 128 x H/8 x W/8``; wide
    and shallow, it keeps the spatial detail the deep context path loses."""

    def __init__(self, cout: int = CONTEXT_CHANNELS) -> None:
        super().__init__()
        self.layers = nn.Sequential(conv_bn_relu(3, 64, 7, 2), conv_bn_relu(64, 64, 3, 2),
                                    conv_bn_relu(64, cout, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class AttentionRefinement(nn.Module):
    """ARM: a 3x3 conv-bn-relu to ``cout`` channels, then each channel scaled by a sigmoid
    weight computed from the global average of the features (1x1 conv, BN).

    ``B x cin x h x w`` → ``B x cout x h x w``.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = conv_bn_relu(cin, cout)
        self.attend = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout, 1, bias=False),
                                    nn.BatchNorm2d(cout), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return h * self.attend(h)


class ContextPath(nn.Module):
    """The context path on the trunk's ``c3`` (stride 16) and ``c4`` (stride 32).

    ``forward(c3: B x C3 x H/16 x W/16, c4: B x C4 x H/32 x W/32, size8)`` returns
    ``(ctx, f16, f32)``: ``ctx: B x 128 x size8`` (stride 8, for the fusion), and the
    refined stride-16 and stride-32 features ``f16``/``f32`` (``B x 128 x …``, the auxiliary
    heads' inputs). ``f32 = ARM(c4) + tail`` (the tail: ``c4``'s global average through a 1x1
    conv-bn-relu, broadcast), ``f16 = ARM(c3) + refine(up(f32))``, ``ctx = refine(up(f16))``.
    """

    def __init__(self, c3: int, c4: int, width: int = CONTEXT_CHANNELS) -> None:
        super().__init__()
        self.tail = conv_bn_relu(c4, width, 1)
        self.arm32 = AttentionRefinement(c4, width)
        self.arm16 = AttentionRefinement(c3, width)
        self.refine32 = conv_bn_relu(width, width)
        self.refine16 = conv_bn_relu(width, width)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor,
                size8: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tail = self.tail(F.adaptive_avg_pool2d(c4, 1))
        f32 = self.arm32(c4) + tail
        f16 = self.arm16(c3) + self.refine32(upsample(f32, c3.shape[-2:]))
        ctx = self.refine16(upsample(f16, size8))
        return ctx, f16, f32


class FeatureFusion(nn.Module):
    """FFM: ``concat(sp, ctx)`` (``B x cin x h x w`` together) → 1x1 conv-bn-relu to ``cout``
    → ``h + h * a`` with channel attention ``a = sigmoid(conv(relu(conv(GAP(h)))))``
    (bottleneck ``cout // reduction``). Returns ``B x cout x h x w``."""

    def __init__(self, cin: int, cout: int = FUSED_CHANNELS, reduction: int = 4) -> None:
        super().__init__()
        self.fuse = conv_bn_relu(cin, cout, 1)
        self.attend = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cout, cout // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(cout // reduction, cout, 1), nn.Sigmoid())

    def forward(self, sp: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        h = self.fuse(torch.cat([sp, ctx], dim=1))
        return h + h * self.attend(h)


class OutputHead(nn.Module):
    """3x3 conv-bn-relu to ``mid`` channels, then a 1x1 conv to class logits:
    ``B x cin x h x w`` → ``B x num_classes x h x w``."""

    def __init__(self, cin: int, mid: int, num_classes: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(conv_bn_relu(cin, mid), nn.Conv2d(mid, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BiSeNet(nn.Module):
    """BiSeNet v1 on the parser's ResNet trunk (``config.backbone``, random init, stride 32).

    ``forward(x: B x 3 x H x W float RGB in [0, 1])`` (H, W multiples of 32) returns
    ``{"logits": B x C x H x W}`` in eval mode and additionally ``"aux": [aux16, aux32]``
    (each ``B x C x H x W``, from the context path's stride-16 and stride-32 features) in
    training mode. ``config`` (a :class:`ParserConfig`: classes, input size) is what
    :class:`model.inference.Predictor` and the benchmarks read.
    """

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ResNetBackbone(config.backbone, 32)
        _, _, c3, c4 = self.backbone.channels
        self.spatial = SpatialPath()
        self.context = ContextPath(c3, c4)
        self.fusion = FeatureFusion(2 * CONTEXT_CHANNELS)
        self.head = OutputHead(FUSED_CHANNELS, FUSED_CHANNELS, config.num_classes)
        self.aux16 = OutputHead(CONTEXT_CHANNELS, 64, config.num_classes)
        self.aux32 = OutputHead(CONTEXT_CHANNELS, 64, config.num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        z = (x - self.mean) / self.std
        _, _, c3, c4 = self.backbone(z)
        sp = self.spatial(z)
        ctx, f16, f32 = self.context(c3, c4, sp.shape[-2:])
        size = x.shape[-2:]
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {
            "logits": upsample(self.head(self.fusion(sp, ctx)), size)}
        if self.training:
            out["aux"] = [upsample(self.aux16(f16), size), upsample(self.aux32(f32), size)]
        return out


def ohem_cross_entropy(logits: torch.Tensor, target: torch.Tensor, thresh: float = OHEM_THRESH,
                       min_kept: int | None = None) -> torch.Tensor:
    """Cross-entropy with online hard example mining, as BiSeNet trains.

    ``logits: B x C x H x W`` (any float dtype; computed in float32), ``target: B x H x W``
    long class ids (every pixel counts). Per-pixel losses above ``-log(thresh)`` (true-class
    probability below ``thresh``) are hard; the mean is taken over the hard pixels, or over
    the ``min_kept`` largest losses when fewer are hard (``None``: 1/16 of the pixels,
    ``B * H * W // 16``). Returns a scalar.
    """
    loss = F.cross_entropy(logits.float(), target, reduction="none").flatten()
    if min_kept is None:
        min_kept = loss.numel() // 16
    hard = int((loss > -math.log(thresh)).sum())
    keep = min(loss.numel(), max(hard, min_kept, 1))
    return loss.topk(keep, sorted=False).values.mean()


def bisenet_loss(out: dict[str, torch.Tensor | list[torch.Tensor]],
                 target: torch.Tensor) -> dict[str, torch.Tensor]:
    """OHEM cross-entropy on ``out["logits"]`` and on each of ``out["aux"]`` (all
    ``B x C x H x W``) against ``target: B x H x W``; the terms and their sum ``"total"``."""
    terms = {"main": ohem_cross_entropy(out["logits"], target)}
    for name, aux in zip(("aux16", "aux32"), out["aux"]):
        terms[name] = ohem_cross_entropy(aux, target)
    terms["total"] = sum(terms.values())
    return terms


def sgd(model: nn.Module, lr: float = LR) -> torch.optim.SGD:
    """SGD, momentum 0.9, weight decay 5e-4 on conv weights (not on norm weights or biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": WEIGHT_DECAY},
                            {"params": rest, "weight_decay": 0.0}], lr=lr, momentum=MOMENTUM)


def warmup_steps(steps: int) -> int:
    """Linear warm-up length: the first 10 % of ``steps``, at most 1000."""
    return min(WARMUP_MAX, int(WARMUP_SHARE * steps))


def train_bisenet(samples: Sequence[Sample], size: int, steps: int, batch: int, seed: int,
                  seconds: float | None = None, device: str | torch.device = "cpu", *,
                  lr: float = LR, num_workers: int | None = None, amp: bool = True,
                  channels_last: bool = True,
                  labels: LabelSet = CELEBAMASK) -> tuple[BiSeNet, dict]:
    """Train a fresh :class:`BiSeNet` at ``size`` px on ``samples`` with BiSeNet's recipe.

    ``steps`` optimiser steps of ``batch`` images drawn by :class:`BatchStream` (the parser's
    augmentation, seeded by ``seed``; torch/numpy/random seeded too). With ``seconds`` the run
    stops once that many seconds of training have passed (at most ``steps`` steps) and its
    warm-up and poly decay follow the clock (:func:`model.schedule.schedule_position`), as
    the parser's time-budgeted runs do. ``amp``/``channels_last``/``num_workers`` (DataLoader
    processes; ``None``: 0 on a CPU, up to 8 on a GPU) as the parser's recipe has them, so
    step times compare. Returns the model (eval mode, on the CPU) and ``meta``: ``steps``
    made, ``max_steps``, ``seconds`` of training, ``final_loss`` (total of the last step),
    ``final_losses`` (its terms), ``lr``, ``warmup``, ``batch_size``, ``time_budget_s``.
    """
    dev = resolve_device(device)
    seed_everything(seed)
    model = BiSeNet(ParserConfig.small(labels, input_size=size, edge_head=False)).to(dev).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = sgd(model, lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dev.type == "cuda"
                                  and amp_dtype(dev) == torch.float16)
    stream = BatchStream(samples, [], size, batch, 0, labels, AugmentConfig(), seed)
    workers = num_workers if num_workers is not None else (
        min(8, available_cores() - 1) if dev.type == "cuda" else 0)
    warmup = warmup_steps(steps)
    done, position, losses = 0, 0, {}
    start = time.perf_counter()
    with iterate_batches(stream, workers, pin=dev.type == "cuda") as batches:
        while position < steps:
            for group in opt.param_groups:
                group["lr"] = lr * lr_factor(position, steps, warmup, "poly")
            losses = _step(model, opt, scaler, next(batches), dev, amp, channels_last, done + 1)
            done += 1
            position = schedule_position(done, steps, time.perf_counter() - start, seconds)
    elapsed = time.perf_counter() - start
    model = model.to("cpu").to(memory_format=torch.contiguous_format).eval()
    meta = {"steps": done, "max_steps": steps, "seconds": round(elapsed, 3),
            "final_loss": losses.get("total"), "final_losses": losses, "lr": lr,
            "warmup": warmup, "batch_size": batch, "time_budget_s": seconds}
    return model, meta


def _step(model: BiSeNet, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          batch: dict[str, torch.Tensor], dev: torch.device, amp: bool, channels_last: bool,
          step: int) -> dict[str, float]:
    """One SGD step on ``batch`` (``"images": B x 3 x S x S`` uint8, ``"targets": B x S x S``);
    the loss terms as floats."""
    x = batch["images"].to(dev, non_blocking=True).float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    target = batch["targets"].to(dev, non_blocking=True).long()
    with autocast(dev, amp):
        terms = bisenet_loss(model(x), target)
    if not torch.isfinite(terms["total"]):
        raise FacetError(f"BiSeNet training diverged at step {step} "
                         f"(loss {terms['total'].item()})")
    opt.zero_grad(set_to_none=True)
    scaler.scale(terms["total"]).backward()
    scaler.step(opt)
    scaler.update()
    return {k: float(v.detach()) for k, v in terms.items()}
