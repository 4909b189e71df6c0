"""The context stage: DANet-style position and channel self-attention (Fu et al., 2019).

Both attention maps are computed in float32 (autocast off): the channel energies are sums over
all positions and lose too much precision in bfloat16.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PositionAttention(nn.Module):
    """Every position attends to every other: ``out = x + gamma * V softmax(Q^T K / sqrt(d))``.

    ``x``: ``B x C x H x W`` → ``B x C x H x W``.
    """

    def __init__(self, channels: int, reduction: int = 8, gamma: float = 0.1) -> None:
        super().__init__()
        inner = max(channels // reduction, 8)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.tensor(gamma))
        self.scale = inner ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float()
            q = self.query(xf).flatten(2).transpose(1, 2)   # B x N x d
            k = self.key(xf).flatten(2)                      # B x d x N
            v = self.value(xf).flatten(2)                    # B x C x N
            attn = torch.softmax(torch.bmm(q, k) * self.scale, dim=-1)  # B x N x N
            out = torch.bmm(v, attn.transpose(1, 2)).view(b, c, h, w)
            return (xf + self.gamma * out).to(x.dtype)


class ChannelAttention(nn.Module):
    """Every channel attends to every other (DANet CAM): ``out = x + gamma * A X``, with
    ``A = softmax(max(E) - E)`` and ``E = X X^T`` over positions.

    ``x``: ``B x C x H x W`` → ``B x C x H x W``.
    """

    def __init__(self, gamma: float = 0.1) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.tensor(gamma))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            xf = x.float().flatten(2)                                  # B x C x N
            energy = torch.bmm(xf, xf.transpose(1, 2)) / xf.shape[-1]  # B x C x C
            energy = energy.amax(dim=-1, keepdim=True) - energy
            out = torch.bmm(torch.softmax(energy, dim=-1), xf).view(b, c, h, w)
            return (x.float() + self.gamma * out).to(x.dtype)


class ContextModule(nn.Module):
    """Deepest backbone features → context features.

    ``x``: ``B x in_channels x h x w`` → ``B x channels x h x w``. With ``attention`` the two
    DANet branches run in parallel and are summed; without it both branches are plain 3x3
    conv blocks of the same width (the ablation baseline).
    """

    def __init__(self, in_channels: int, channels: int, attention: bool = True,
                 reduction: int = 8) -> None:
        super().__init__()
        self.attention = attention
        self.reduce_pos = conv_bn_relu(in_channels, channels)
        self.reduce_chan = conv_bn_relu(in_channels, channels)
        self.position = PositionAttention(channels, reduction) if attention else nn.Identity()
        self.channel = ChannelAttention() if attention else nn.Identity()
        self.post_pos = conv_bn_relu(channels, channels)
        self.post_chan = conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.post_pos(self.position(self.reduce_pos(x)))
        chan = self.post_chan(self.channel(self.reduce_chan(x)))
        return pos + chan
