"""torchvision trunks (ResNets, MobileNetV3-Large) that return four stage outputs at strides 4,
8, 16 and 32 (random init, nothing downloaded; local torchvision weights on request)."""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torch import nn

from core.errors import FacetError

STAGE_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
    "resnet101": (256, 512, 1024, 2048),
    "mobilenet_v3_large": (24, 40, 112, 960),
}
MOBILENET_CUTS = (4, 7, 13, 17)
"""``features[:4]`` ends at stride 4, ``[:7]`` at 8, ``[:13]`` at 16, ``[:17]`` at 32."""


def read_state_dict(path: str | os.PathLike) -> dict:
    """A local torchvision state dict (or a ``{"state_dict": …}`` wrapper), with clear errors."""
    path = Path(path)
    if not path.is_file():
        raise FacetError(f"backbone weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad file
        raise FacetError(f"cannot read backbone weights {path}: {err}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise FacetError(f"backbone weights {path} are not a state dict")
    return state


def load_fitting(module: nn.Module, state: dict, path: str | os.PathLike) -> None:
    """Load ``state`` into ``module`` exactly, or a :class:`FacetError` naming what differs."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatch
        raise FacetError(f"backbone weights {path} do not fit: {str(err).splitlines()[-1].strip()}") from None
    if missing or unexpected:
        raise FacetError(f"backbone weights {path} do not fit: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")


class ResNetBackbone(nn.Module):
    """A ResNet without its classifier.

    ``forward(x: B x 3 x H x W)`` returns ``[c1, c2, c3, c4]`` at strides 4, 8, 16 and
    ``output_stride`` (later stages dilated instead of strided when ``output_stride < 32``),
    with :attr:`channels` channels.
    """

    def __init__(self, name: str, output_stride: int = 32) -> None:
        super().__init__()
        dilate = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}
        if name in ("resnet18", "resnet34") and output_stride != 32:
            # BasicBlock cannot dilate in torchvision; keep the stride and say so.
            raise FacetError(f"{name} supports only output_stride 32 (torchvision BasicBlock "
                             "has no dilation); use resnet50/resnet101 for 8 or 16")
        net = getattr(torchvision.models, name)(
            weights=None, replace_stride_with_dilation=dilate[output_stride])
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1, net.layer2, net.layer3, net.layer4)
        self.channels = STAGE_CHANNELS[name]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]

    def load_torchvision_weights(self, path: str | os.PathLike) -> None:
        """Load a local torchvision ResNet state dict (``fc.*`` ignored; any other mismatch is
        a :class:`FacetError` naming the keys)."""
        state = read_state_dict(path)
        renamed = {}
        for key, value in state.items():
            if key.startswith("fc."):
                continue
            head, _, rest = key.partition(".")
            if head in ("conv1", "bn1"):
                key = {"conv1": "stem.0", "bn1": "stem.1"}[head] + "." + rest
            renamed[key] = value
        load_fitting(self, renamed, path)


class MobileNetBackbone(nn.Module):
    """torchvision's MobileNetV3-Large trunk (no classifier), output stride 32.

    ``forward(x: B x 3 x H x W)`` returns ``[c1, c2, c3, c4]`` at strides 4, 8, 16, 32 with
    :attr:`channels` = (24, 40, 112, 960) channels. About 3 M parameters: the CPU preset's
    trunk (SegFace reports 87.9 mean F1 on CelebAMask-HQ with this trunk).
    """

    def __init__(self, name: str = "mobilenet_v3_large", output_stride: int = 32) -> None:
        super().__init__()
        if output_stride != 32:
            raise FacetError(f"{name} supports only output_stride 32")
        self.features = torchvision.models.mobilenet_v3_large(weights=None).features
        for module in self.features.modules():
            if isinstance(module, nn.BatchNorm2d):
                # torchvision's 0.01 suits ImageNet-long runs; after a few hundred steps its
                # running statistics are still near their init and eval mode predicts nothing
                module.momentum = 0.1
        self.channels = STAGE_CHANNELS[name]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, start = [], 0
        for end in MOBILENET_CUTS:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x)
            start = end
        return out

    def load_torchvision_weights(self, path: str | os.PathLike) -> None:
        """Load a local torchvision MobileNetV3-Large state dict (``classifier.*`` ignored)."""
        state = {k: v for k, v in read_state_dict(path).items() if not k.startswith("classifier.")}
        load_fitting(self, state, path)


def build_backbone(name: str, output_stride: int) -> ResNetBackbone | MobileNetBackbone:
    """The trunk called ``name`` (one of :data:`STAGE_CHANNELS`)."""
    if name.startswith("mobilenet"):
        return MobileNetBackbone(name, output_stride)
    return ResNetBackbone(name, output_stride)
