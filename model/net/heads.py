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
