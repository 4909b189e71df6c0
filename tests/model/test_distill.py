"""Self-distillation: the KL term, its temperature scaling, and the teachers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from model.distill import Teacher, distillation_loss, trusted_pixels
from model.net import ParserConfig, build_face_parser


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


def test_the_teacher_teaches_only_where_it_is_sure_and_not_contradicted_by_a_label():
    # 2 images x 3 classes x 1 x 3 pixels; image 0 is labelled, image 1 is not
    teacher = torch.tensor([[[[5.0, 0.0, 5.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]],
                            [[[5.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]])
    labels = torch.tensor([[[0, 0, 2]]])        # pixel 2: the teacher says 0, the label 2
    mask = trusted_pixels(teacher, 0.9, labels)
    assert mask.tolist() == [[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]]   # pixel 1: unsure (1/3)
    assert trusted_pixels(teacher, 0.0).tolist() == [[[1.0, 1.0, 1.0]]] * 2

    student = torch.randn(2, 3, 1, 3)
    full = distillation_loss(student, teacher, 2.0, torch.ones(2, 1, 3))
    assert full.item() == pytest.approx(distillation_loss(student, teacher, 2.0).item())
    # masked pixels add nothing: the loss equals the per-pixel KL of the kept pixels / all pixels
    per_pixel = [distillation_loss(student[b:b + 1, :, :, i:i + 1], teacher[b:b + 1, :, :, i:i + 1],
                                   2.0).item() for b in range(2) for i in range(3)]
    kept = distillation_loss(student, teacher, 2.0, mask).item()
    assert kept == pytest.approx((per_pixel[0] + per_pixel[3]) / 6, rel=1e-5)


def test_frozen_teacher_never_changes_and_ema_teacher_follows():
    torch.manual_seed(0)
    student = build_face_parser(ParserConfig.small(input_size=64))
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
