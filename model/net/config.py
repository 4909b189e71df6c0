"""The parser's hyperparameters: one dataclass, saved in every checkpoint and rebuilt from it.

``ParserConfig.small()`` is the CPU model (resnet18, 256 x 256 input, output stride 32);
``ParserConfig.mobile()`` the same on MobileNetV3-Large (the shipped prior is ``small`` at
192 px with the fine head: docs/PRIOR.md);
``ParserConfig.paper()`` follows Han & Yoon (2024): resnet101 dilated to output stride 8 at
512 x 512. :func:`model.net.network.build_face_parser` is the only place these numbers turn
into layers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet

BACKBONES: tuple[str, ...] = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v3_large")
PRESETS: tuple[str, ...] = ("small", "mobile", "paper")


@dataclass(frozen=True)
class ParserConfig:
    """Architecture of a :class:`model.net.network.FaceParser`.

    Attributes:
        backbone: torchvision trunk name (a ResNet or ``mobilenet_v3_large``; random init
            unless ``backbone_weights`` is set).
        output_stride: 8, 16 or 32; strides below 32 replace ResNet strides with dilation.
        input_size: side of the square network input in pixels; images are resized to it.
        num_classes: output classes (from the label set).
        attention: position + channel self-attention in the context stage (off: plain convs).
        edge_head: train a binary edge head beside the parsing head (never run in eval mode).
        fine_head: refine the logits at ``fine_stride`` with detail from the image
            (:class:`model.net.heads.FineHead`) instead of upsampling them from stride 4.
        fine_stride: 2, or 1 for a fine head at full resolution.
        context_channels: width of the context stage.
        decoder_channels: width of the decoder that fuses context with stride-4 features.
        skip_channels: width the stride-4 (and stride-8) backbone features are projected to.
        edge_channels: width of each level's projection in the edge head.
        attention_reduction: query/key width = context_channels // attention_reduction.
        dropout: dropout before the class logits (training only).
        backbone_weights: optional local torchvision-format ResNet state-dict file; used when
            the network is first built, never needed to load a checkpoint.
    """

    backbone: str = "resnet18"
    output_stride: int = 32
    input_size: int = 256
    num_classes: int = CELEBAMASK.num_classes
    attention: bool = True
    edge_head: bool = True
    fine_head: bool = False
    fine_stride: int = 2
    context_channels: int = 128
    decoder_channels: int = 96
    skip_channels: int = 48
    edge_channels: int = 24
    attention_reduction: int = 8
    dropout: float = 0.1
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise FacetError(f"unknown backbone {self.backbone!r}; choose from {', '.join(BACKBONES)}")
        if self.output_stride not in (8, 16, 32):
            raise FacetError(f"output_stride must be 8, 16 or 32, got {self.output_stride}")
        if self.fine_stride not in (1, 2):
            raise FacetError(f"fine_stride must be 1 or 2, got {self.fine_stride}")
        if self.input_size < 32 or self.input_size % 32:
            raise FacetError(f"input_size must be a multiple of 32 (>= 32), got {self.input_size}")
        if self.num_classes < 2:
            raise FacetError(f"num_classes must be at least 2, got {self.num_classes}")

    @classmethod
    def small(cls, labels: LabelSet = CELEBAMASK, **overrides: Any) -> "ParserConfig":
        """resnet18 at 256 x 256, output stride 32: the CPU model."""
        return cls(num_classes=labels.num_classes, **overrides)

    @classmethod
    def mobile(cls, labels: LabelSet = CELEBAMASK, **overrides: Any) -> "ParserConfig":
        """MobileNetV3-Large at 256 x 256, output stride 32."""
        return cls(num_classes=labels.num_classes, **{"backbone": "mobilenet_v3_large", **overrides})

    @classmethod
    def paper(cls, labels: LabelSet = CELEBAMASK, **overrides: Any) -> "ParserConfig":
        """resnet101 dilated to output stride 8 at 512 x 512, as in Han & Yoon (2024)."""
        base = dict(backbone="resnet101", output_stride=8, input_size=512, context_channels=512,
                    decoder_channels=256, skip_channels=64, edge_channels=64)
        base.update(overrides)
        return cls(num_classes=labels.num_classes, **base)

    @classmethod
    def preset(cls, name: str, labels: LabelSet = CELEBAMASK, **overrides: Any) -> "ParserConfig":
        """``"small"``, ``"mobile"`` or ``"paper"``; a :class:`FacetError` for anything else."""
        if name not in PRESETS:
            raise FacetError(f"unknown config {name!r}; choose from {', '.join(PRESETS)}")
        return getattr(cls, name)(labels, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ParserConfig":
        """Rebuild from :meth:`to_dict`; unknown keys are an error (a newer checkpoint)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FacetError(f"checkpoint config has unknown fields: {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "ParserConfig":
        return replace(self, **changes)
