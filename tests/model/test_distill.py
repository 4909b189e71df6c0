"""Self-distillation: the KL term, its temperature scaling, and the teachers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.config import ParserConfig
from model.distill import Teacher, distillation_loss
from model.network import build_parser


def test_kl_is_zero_for_identical_logits():
    logits = torch.randn(2, 19, 8, 8)
    assert distillation_loss(logits, logits.clone(), 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_direction_and_t_squared_scaling():
    s, t = torch.randn(2, 5, 4, 4), torch.randn(2, 5, 4, 4)
    for temp in (1.0, 2.0, 4.0):
        p_t = F.softmax(t / temp, 1)
        kl = (p_t * (p_t.log() - F.log_softmax(s / temp, 1))).sum(1).mean()   # KL(teacher||student)
        assert distillation_loss(s, t, temp).item() == pytest.approx(temp ** 2 * kl.item(), rel=1e-5)
    # for small logit gaps the scaled loss converges as T grows (that is what T^2 is for)
    s_small, t_small = s * 0.05, t * 0.05
    a, b = distillation_loss(s_small, t_small, 4.0), distillation_loss(s_small, t_small, 8.0)
    assert a.item() == pytest.approx(b.item(), rel=0.05)


def test_frozen_teacher_never_changes_and_ema_teacher_follows():
    torch.manual_seed(0)
    student = build_parser(ParserConfig.small(input_size=64))
    frozen = Teacher(student)
    ema = Teacher.ema_of(student, decay=0.5)
    assert all(not p.requires_grad for p in frozen.model.parameters())
    before = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    frozen.update(student)
    ema.update(student)
    for p_e, p_b, p_s in zip(ema.model.parameters(), before, student.parameters()):
        assert torch.allclose(p_e, 0.5 * p_b + 0.5 * p_s)
    assert not torch.equal(next(frozen.model.parameters()), next(student.parameters()))
    out = frozen.logits(torch.rand(1, 3, 32, 32))   # resized through the teacher's 64 x 64
    assert out.shape == (1, 19, 32, 32) and not frozen.model.training
