"""The face parser and its one builder.

``build_face_parser(config)`` is the only place a :class:`ParserConfig` becomes layers::

    image B x 3 x H x W (RGB in [0, 1])
      → backbone  (ResNet or MobileNetV3: c1..c4 at strides 4, 8, 16, output_stride)
      → context   (position + channel self-attention on c4)
      → decoder   (context fused with c1 and c2 at stride 4)
      → heads     ("seg": class logits; "fine": their stride-2 or -1 refinement from the image,
                   when configured; "edge": binary edges, training mode only)
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import FacetError

from model.net.attention import ContextModule
from model.net.backbone import MobileNetBackbone, ResNetBackbone, build_backbone
from model.net.config import ParserConfig
from model.net.decoder import Decoder
from model.net.heads import EdgeHead, FineHead, SegmentationHead

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FaceParser(nn.Module):
    """Face parsing network (Han & Yoon, 2024, on a torchvision ResNet).

    ``forward(x: B x 3 x H x W float RGB in [0, 1])`` returns a dict:
      ``"logits"``: ``B x num_classes x H x W`` (upsampled to the input size);
      ``"edges"``: ``B x 1 x H x W`` edge logits, only in training mode with an edge head.
    In eval mode the edge head never runs, so it costs nothing at inference.
    """

    def __init__(self, config: ParserConfig, backbone: ResNetBackbone | MobileNetBackbone,
                 context: ContextModule,
                 decoder: Decoder, heads: nn.ModuleDict) -> None:
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.context = context
        self.decoder = decoder
        self.heads = heads
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        size = x.shape[-2:]
        normalised = (x - self.mean) / self.std
        c1, c2, c3, c4 = self.backbone(normalised)
        features = self.decoder(self.context(c4), c1, c2)
        logits = self.heads["seg"](features)
        if "fine" in self.heads:
            logits = self.heads["fine"](normalised, features, logits)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        out = {"logits": logits}
        if self.training and "edge" in self.heads:
            edges = self.heads["edge"]([c1, c2, c3])
            out["edges"] = F.interpolate(edges, size=size, mode="bilinear", align_corners=False)
        return out


def build_face_parser(config: ParserConfig, *,
                      backbone_weights: str | os.PathLike | None = None,
                      load_backbone_weights: bool = True) -> FaceParser:
    """Build a randomly initialised :class:`FaceParser` from ``config``.

    The backbone is initialised from ``backbone_weights`` (or ``config.backbone_weights``), a
    local torchvision state dict of the trunk, when one is given and ``load_backbone_weights``;
    nothing is ever downloaded. Checkpoint loading passes ``load_backbone_weights=False``.
    """
    backbone = build_backbone(config.backbone, config.output_stride)
    weights = backbone_weights or config.backbone_weights
    if weights and load_backbone_weights:
        backbone.load_torchvision_weights(weights)
    c1, c2, c3, c4 = backbone.channels
    context = ContextModule(c4, config.context_channels, config.attention,
                            config.attention_reduction)
    decoder = Decoder(config.context_channels, c1, c2, config.skip_channels,
                      config.decoder_channels)
    heads = nn.ModuleDict({"seg": SegmentationHead(config.decoder_channels, config.num_classes,
                                                   config.dropout)})
    if config.fine_head:
        heads["fine"] = FineHead(config.decoder_channels, config.num_classes,
                                 stride=config.fine_stride)
    if config.edge_head:
        heads["edge"] = EdgeHead((c1, c2, c3), config.edge_channels)
    return FaceParser(config, backbone, context, decoder, heads)


def can_grow(old: ParserConfig, new: ParserConfig) -> bool:
    """Whether ``new`` is ``old`` with heads added (``fine_head``, ``edge_head``) or its fine
    head's ``fine_stride`` changed, and nothing else (the backbone weights file, used only when
    a model is first built, aside)."""
    same_rest = new.replace(fine_head=old.fine_head, fine_stride=old.fine_stride,
                            edge_head=old.edge_head,
                            backbone_weights=old.backbone_weights) == old
    return same_rest and new.fine_head >= old.fine_head and new.edge_head >= old.edge_head


def grow_face_parser(model: FaceParser, config: ParserConfig) -> FaceParser:
    """A :class:`FaceParser` of ``config`` holding ``model``'s weights, where ``config`` only
    adds heads to ``model.config`` or changes its fine head's stride (:func:`can_grow`): an
    added or replaced head starts as built (a fine head adds nothing until trained); anything
    else is a :class:`FacetError`."""
    if not can_grow(model.config, config):
        raise FacetError("a model can only be grown by adding heads (fine_head, edge_head) "
                         "to its config or changing its fine_stride")
    grown = build_face_parser(config, load_backbone_weights=False)
    state = model.state_dict()
    if model.config.fine_head and model.config.fine_stride != config.fine_stride:
        state = {k: v for k, v in state.items() if not k.startswith("heads.fine.")}
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith(("heads.fine.", "heads.edge.")) for key in missing):
        raise FacetError("the grown model does not hold the original's weights")
    return grown
