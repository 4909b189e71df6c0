"""Self-distillation: a frozen teacher (a checkpoint, or an exponential moving average of the
student) gives temperature-softened targets; the student matches them with KL(teacher || student)
scaled by T^2 (Hinton et al., 2015), on labelled and unlabelled images alike."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DistillConfig:
    """How a student learns from its teacher (used only when a run has one).

    Attributes:
        weight: weight of the KL term in the loss; 2 (measured: at K = 8 labels it kept the
            original style within 1 point of mean F1, weight 1 did not; docs/BENCHMARKS.md).
        temperature: softmax temperature ``T`` of both sides; the term is scaled by ``T^2``.
        confidence: distil only at pixels whose teacher top-class probability is at least
            this and, on labelled images, where the teacher agrees with the label
            (:func:`trusted_pixels`); ``None`` distils every pixel.
        ema_teacher: the teacher is an exponential moving average of the student itself
            instead of a frozen checkpoint.
        ema_decay: decay of that average per step.
    """

    weight: float = 2.0
    temperature: float = 2.0
    confidence: float | None = None
    ema_teacher: bool = False
    ema_decay: float = 0.99


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      temperature: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``B x C x H x W`` logits → mean over pixels of ``KL(softmax(t/T) || softmax(s/T)) * T^2``.

    Zero when the logits are equal; the ``T^2`` factor keeps gradient sizes comparable
    across temperatures. ``weights`` (``B x H x W``, 0..1) weigh each pixel's term; the
    result is still a mean over all pixels, so masked-out pixels only lower it.
    """
    t = float(temperature)
    log_p_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(dim=1)
    if weights is not None:
        kl = kl * weights
    return kl.mean() * (t * t)


@torch.no_grad()
def trusted_pixels(teacher_logits: torch.Tensor, min_confidence: float,
                   labels: torch.Tensor | None = None) -> torch.Tensor:
    """``B x H x W`` float mask (0/1) of the pixels where the teacher may teach.

    A pixel counts when the teacher's top class has probability ≥ ``min_confidence`` and, for
    the first ``labels.shape[0]`` images (the labelled part of the batch, ``N x H x W`` class
    ids), that class is the label: where an annotator's label says otherwise the teacher is
    wrong, and its soft target would pull against the label.
    """
    probs = torch.softmax(teacher_logits.float(), dim=1)
    confidence, top = probs.max(dim=1)
    trusted = confidence >= min_confidence
    if labels is not None:
        n = labels.shape[0]
        trusted[:n] &= top[:n] == labels
    return trusted.float()


class Teacher:
    """Soft targets for distillation. Never trained by the optimiser; always in eval mode.

    ``Teacher(model)`` freezes a copy of ``model``; ``Teacher.ema_of(student, decay)`` starts
    from a copy of the student and follows it with :meth:`update`.
    """

    def __init__(self, model: nn.Module, ema_decay: float | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.ema_decay = ema_decay

    @classmethod
    def ema_of(cls, student: nn.Module, decay: float = 0.99) -> "Teacher":
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        return cls(student, ema_decay=decay)

    @property
    def input_size(self) -> int:
        return self.model.config.input_size

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        """EMA step: ``teacher = decay * teacher + (1 - decay) * student``; buffers copied.
        A no-op for a frozen checkpoint teacher."""
        if self.ema_decay is None:
            return
        d = self.ema_decay
        for t, s in zip(self.model.parameters(), student.parameters()):
            t.mul_(d).add_(s.detach(), alpha=1.0 - d)
        for t, s in zip(self.model.buffers(), student.buffers()):
            t.copy_(s)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 3 x H x W`` in [0, 1] → ``B x C x H x W`` teacher logits (resized through the
        teacher's own input size when it differs)."""
        size = x.shape[-2:]
        inp = x
        if tuple(size) != (self.input_size, self.input_size):
            inp = F.interpolate(x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False)
        out = self.model(inp)["logits"]
        if out.shape[-2:] != size:
            out = F.interpolate(out.float(), size=size, mode="bilinear", align_corners=False)
        return out
