"""Training losses for the parser: weighted cross-entropy with extra weight on edge pixels,
a balanced binary edge loss, and optional Lovász-softmax. Every term is reported separately."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from core.errors import FacetError
from core.labels import THIN_CLASSES, LabelSet
from model.edges import label_edges


THIN_WEIGHT = 20.0
"""Cross-entropy weight of earrings and necklaces. Going on from the face prior for 300 steps,
ear_r / neck_l F1 were 0.00 / 0.02 at weight 2, 0.02 / 0.16 at 8, 0.11 / 0.14 at 20 and
0.05 / 0.05 at 50 (with the rare-part boost), the mean F1 no lower up to 20
(``bench/thin_parts.py``, docs/BENCHMARKS.md "Thin parts"). Predictions take part of the
weight back off those classes' logits (:mod:`model.calibration`), or they paint bands."""


@dataclass(frozen=True)
class LossConfig:
    """Weights of the loss terms.

    Attributes:
        edge_weight: weight of the balanced edge BCE (needs a model with an edge head).
        edge_ce_weight: extra cross-entropy weight on edge pixels; an edge pixel counts
            ``1 + edge_ce_weight`` times.
        class_weights: cross-entropy weight per class name (others 1); by default
            :data:`THIN_WEIGHT` for the thin rare classes (:data:`core.labels.THIN_CLASSES`).
        lovasz_weight: weight of the Lovász-softmax term (0 = off).
    """

    edge_weight: float = 1.0
    edge_ce_weight: float = 1.0
    class_weights: dict[str, float] = field(
        default_factory=lambda: {name: THIN_WEIGHT for name in THIN_CLASSES})
    lovasz_weight: float = 0.0

    def with_thin_weight(self, weight: float) -> "LossConfig":
        """These weights with every thin class (:data:`core.labels.THIN_CLASSES`) at ``weight``."""
        if not 0 < weight < float("inf"):
            raise FacetError(f"a class weight must be a positive number, got {weight}")
        return replace(self, class_weights={**self.class_weights,
                                            **{name: float(weight) for name in THIN_CLASSES}})

    @classmethod
    def plain(cls) -> "LossConfig":
        """Cross-entropy only (with the same class weights): no edge terms, no Lovász."""
        return cls(edge_weight=0.0, edge_ce_weight=0.0)

    def class_weight_tensor(self, labels: LabelSet) -> torch.Tensor:
        """``num_classes`` float32 weights; unknown class names raise ``KeyError``."""
        weights = torch.ones(labels.num_classes)
        for name, value in self.class_weights.items():
            weights[labels.id(name)] = float(value)
        return weights


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                           pixel_weight: torch.Tensor) -> torch.Tensor:
    """``logits: B x C x H x W``, ``target: B x H x W`` long, ``pixel_weight: B x H x W`` →
    weighted mean cross-entropy ``sum(w * ce) / sum(w)``."""
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    return (ce * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-6)


def balanced_edge_loss(edge_logits: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``edge_logits: B x 1 x H x W``, ``edges: B x H x W`` bool → mean of the BCE averaged over
    edge pixels and the BCE averaged over non-edge pixels (so the rare class counts half)."""
    logits = edge_logits.float().squeeze(1)
    bce = F.binary_cross_entropy_with_logits(logits, edges.float(), reduction="none")
    pos, neg = edges, ~edges
    terms = [bce[m].mean() for m in (pos, neg) if m.any()]
    return torch.stack(terms).mean()


def lovasz_softmax(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lovász-softmax (Berman et al., 2018): a convex surrogate of the mean Jaccard loss over
    the classes present in ``target``. ``probs: B x C x H x W`` softmax, ``target: B x H x W``."""
    c = probs.shape[1]
    probs = probs.permute(0, 2, 3, 1).reshape(-1, c)
    target = target.reshape(-1)
    present = torch.unique(target)
    # all present classes at once: one batched sort instead of a loop over the classes
    fg = (target.unsqueeze(0) == present.unsqueeze(1)).float()            # K x N
    errors = (fg - probs.t()[present]).abs()
    errors, order = torch.sort(errors, dim=1, descending=True)
    fg_sorted = fg.gather(1, order)
    total = fg_sorted.sum(dim=1, keepdim=True)
    intersection = total - fg_sorted.cumsum(dim=1)
    union = total + (1.0 - fg_sorted).cumsum(dim=1)
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], dim=1)
    return (errors * grad).sum(dim=1).mean()


class ParsingLoss:
    """``(outputs, target) → (total, terms)``.

    ``outputs`` is the model's dict (``"logits": B x C x H x W``, optionally ``"edges"``);
    ``target`` is ``B x H x W`` long. ``terms`` maps ``"ce"``, ``"edge"``, ``"lovasz"`` (those
    that are on) to their unweighted values; ``total`` is their weighted sum.
    """

    def __init__(self, config: LossConfig, labels: LabelSet) -> None:
        self.config = config
        self.class_weight = config.class_weight_tensor(labels)

    def __call__(self, outputs: dict[str, torch.Tensor],
                 target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        logits = outputs["logits"]
        need_edges = cfg.edge_ce_weight > 0 or (cfg.edge_weight > 0 and "edges" in outputs)
        edges = label_edges(target) if need_edges else None
        weight = self.class_weight.to(logits.device)[target]
        if cfg.edge_ce_weight > 0:
            weight = weight * (1.0 + cfg.edge_ce_weight * edges.float())
        terms = {"ce": weighted_cross_entropy(logits, target, weight)}
        total = terms["ce"]
        if cfg.edge_weight > 0 and "edges" in outputs:
            terms["edge"] = balanced_edge_loss(outputs["edges"], edges)
            total = total + cfg.edge_weight * terms["edge"]
        if cfg.lovasz_weight > 0:
            terms["lovasz"] = lovasz_softmax(torch.softmax(logits.float(), dim=1), target)
            total = total + cfg.lovasz_weight * terms["lovasz"]
        return total, terms
