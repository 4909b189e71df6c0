"""Output heads: class logits, and the training-only edge head."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.net.attention import conv_bn_relu


class SegmentationHead(nn.Module):
    """``B x C x h x w`` decoder features → ``B x num_classes x h x w`` logits."""

    def __init__(self, channels: int, num_classes: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.dropout(x))


class EdgeHead(nn.Module):
    """Binary edge logits from several backbone levels (CE2P-style).

    ``feats``: ``[B x C_i x h_i x w_i]`` (first one at stride 4) → ``B x 1 x h_0 x w_0``.
    """

    def __init__(self, in_channels: tuple[int, ...], channels: int) -> None:
        super().__init__()
        self.project = nn.ModuleList(conv_bn_relu(c, channels, 1) for c in in_channels)
        self.fuse = conv_bn_relu(channels * len(in_channels), channels, 3)
        self.classify = nn.Conv2d(channels, 1, 1)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        levels = [F.interpolate(p(f), size=size, mode="bilinear", align_corners=False)
                  for p, f in zip(self.project, feats)]
        return self.classify(self.fuse(torch.cat(levels, dim=1)))


class FineHead(nn.Module):
    """Refines coarse class logits at ``stride`` 2 (or 1: full resolution) with detail taken
    from the image itself, for parts only a pixel or two wide (earrings, necklaces, brows, the
    lip line).

    ``forward(image: B x 3 x H x W normalised, features: B x Cd x H/4 x W/4,
    coarse: B x K x H/4 x W/4)`` → ``B x K x H/s x W/s`` logits: the coarse logits upsampled
    plus a correction. The correction's last layer starts at zero, so a model grown from a
    checkpoint without this head (:func:`model.net.network.grow_face_parser`) predicts what it
    did (upsampled in two steps instead of one) until training moves it.
    """

    def __init__(self, feature_channels: int, num_classes: int, channels: int = 24,
                 stride: int = 2) -> None:
        super().__init__()
        self.image = nn.Sequential(
            nn.Conv2d(3, channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True), conv_bn_relu(channels, channels, 3))
        self.reduce = conv_bn_relu(feature_channels, channels, 1)
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels, bias=False),
            nn.BatchNorm2d(2 * channels), nn.ReLU(inplace=True),
            conv_bn_relu(2 * channels, channels, 1))
        self.classify = nn.Conv2d(channels, num_classes, 1)
        nn.init.zeros_(self.classify.weight)
        nn.init.zeros_(self.classify.bias)

    def forward(self, image: torch.Tensor, features: torch.Tensor,
                coarse: torch.Tensor) -> torch.Tensor:
        detail = self.image(image)
        size = detail.shape[-2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)  # noqa: E731
        fused = self.fuse(torch.cat([detail, up(self.reduce(features))], dim=1))
        return up(coarse) + self.classify(fused)
