"""torchvision ResNet trunks that return the four stage outputs (random init, nothing downloaded)."""
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
}


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
        renamed = {}
        for key, value in state.items():
            if key.startswith("fc."):
                continue
            head, _, rest = key.partition(".")
            if head in ("conv1", "bn1"):
                key = {"conv1": "stem.0", "bn1": "stem.1"}[head] + "." + rest
            renamed[key] = value
        try:
            missing, unexpected = self.load_state_dict(renamed, strict=False)
        except RuntimeError as err:  # shape mismatch
            raise FacetError(f"backbone weights {path} do not fit: {str(err).splitlines()[-1].strip()}") from None
        if missing or unexpected:
            raise FacetError(f"backbone weights {path} do not fit: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
