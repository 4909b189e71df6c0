"""The decoder: fuses the context features with the stride-4 and stride-8 backbone features."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.net.attention import conv_bn_relu


def separable_block(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each with BN + ReLU (a tenth of a full 3x3's cost)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True), conv_bn_relu(cin, cout, 1))


class Decoder(nn.Module):
    """``context: B x Cc x h x w``, ``c1: B x C1 x H/4 x W/4``, ``c2: B x C2 x H/8 x W/8``
    → ``B x channels x H/4 x W/4``.

    The backbone features are projected to ``skip_channels`` each, everything is brought to
    stride 4 bilinearly, concatenated and refined by two separable conv blocks.
    """

    def __init__(self, context_channels: int, c1_channels: int, c2_channels: int,
                 skip_channels: int, channels: int) -> None:
        super().__init__()
        self.skip1 = conv_bn_relu(c1_channels, skip_channels, 1)
        self.skip2 = conv_bn_relu(c2_channels, skip_channels, 1)
        self.fuse = nn.Sequential(separable_block(context_channels + 2 * skip_channels, channels),
                                  separable_block(channels, channels))

    def forward(self, context: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
        size = c1.shape[-2:]
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False)  # noqa: E731
        return self.fuse(torch.cat([up(context), self.skip1(c1), up(self.skip2(c2))], dim=1))
