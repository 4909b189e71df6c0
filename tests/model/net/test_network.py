"""The network: every preset runs forward and backward on tiny inputs, every parameter learns,
the edge head exists only in training mode, and backbone weights load from a local file."""
from __future__ import annotations

import pytest
import torch
import torchvision

from core.errors import FacetError
from core.labels import CELEBAMASK
from model.losses import LossConfig, ParsingLoss
from model.net import ParserConfig, build_face_parser, grow_face_parser


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("preset", ["small", "mobile", "paper"])
def test_forward_backward_every_parameter_learns(preset):
    config = ParserConfig.preset(preset)
    model = build_face_parser(config).train()
    x = torch.rand(2, 3, 64, 64)
    target = torch.randint(0, CELEBAMASK.num_classes, (2, 64, 64))
    out = model(x)
    assert out["logits"].shape == (2, CELEBAMASK.num_classes, 64, 64)
    assert out["edges"].shape == (2, 1, 64, 64)
    assert all(torch.isfinite(v).all() for v in out.values())
    loss, terms = ParsingLoss(LossConfig(), CELEBAMASK)(out, target)
    assert set(terms) == {"ce", "edge"}
    loss.backward()
    no_grad = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_stages_are_named_and_eval_has_no_edges():
    model = build_face_parser(ParserConfig.small())
    names = [n for n, _ in model.named_children()]
    assert names == ["backbone", "context", "decoder", "heads"]
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 96, 64))
    assert set(out) == {"logits"}
    assert out["logits"].shape == (1, CELEBAMASK.num_classes, 96, 64)


def test_edge_head_off_and_attention_off_build_smaller_models():
    full = build_face_parser(ParserConfig.small())
    bare = build_face_parser(ParserConfig.small(attention=False, edge_head=False)).train()
    assert "edge" not in bare.heads
    assert sum(p.numel() for p in bare.parameters()) < sum(p.numel() for p in full.parameters())
    out = bare(torch.rand(2, 3, 64, 64))
    assert set(out) == {"logits"}


def test_paper_preset_is_resnet101_at_output_stride_8():
    config = ParserConfig.paper()
    assert (config.backbone, config.output_stride, config.input_size) == ("resnet101", 8, 512)
    model = build_face_parser(config).eval()
    with torch.no_grad():
        feats = model.backbone(torch.rand(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 8, 8]


def test_config_round_trips_and_rejects_bad_values():
    config = ParserConfig.small(attention=False)
    assert ParserConfig.from_dict(config.to_dict()) == config
    with pytest.raises(FacetError):
        ParserConfig.from_dict({**config.to_dict(), "future_field": 1})
    with pytest.raises(FacetError):
        ParserConfig.small(backbone="vgg16")
    with pytest.raises(FacetError):
        ParserConfig.preset("huge")
    with pytest.raises(FacetError, match="output_stride"):
        build_face_parser(ParserConfig.small(output_stride=8))
    with pytest.raises(FacetError, match="fine_stride must be 1 or 2"):
        ParserConfig.small(fine_head=True, fine_stride=4)


def test_backbone_initialises_from_a_local_torchvision_file(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = build_face_parser(ParserConfig.small(backbone_weights=str(path)))
    assert torch.equal(model.backbone.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)

    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(FacetError, match="do not fit"):
        build_face_parser(ParserConfig.small(), backbone_weights=tmp_path / "r34.pth")
    with pytest.raises(FacetError, match="not found"):
        build_face_parser(ParserConfig.small(), backbone_weights=tmp_path / "missing.pth")


def test_the_mobile_trunk_loads_a_local_torchvision_mobilenet_file(tmp_path):
    reference = torchvision.models.mobilenet_v3_large(weights=None)
    path = tmp_path / "mobilenet.pth"
    torch.save(reference.state_dict(), path)                  # classifier.* is left out
    model = build_face_parser(ParserConfig.mobile(backbone_weights=str(path)))
    assert torch.equal(model.backbone.features[16][0].weight, reference.features[16][0].weight)
    c1, c2, c3, c4 = model.backbone(torch.rand(1, 3, 64, 64))
    assert [t.shape[1:] for t in (c1, c2, c3, c4)] == [(24, 16, 16), (40, 8, 8), (112, 4, 4),
                                                       (960, 2, 2)]
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(FacetError, match="do not fit"):
        build_face_parser(ParserConfig.mobile(), backbone_weights=tmp_path / "r18.pth")


@pytest.mark.parametrize("fine_stride", [2, 1])
def test_a_model_grown_by_the_fine_head_predicts_what_it_did_and_then_learns_detail(fine_stride):
    plain = build_face_parser(ParserConfig.small(input_size=64)).eval()
    grown = grow_face_parser(plain, plain.config.replace(fine_head=True,
                                                         fine_stride=fine_stride)).eval()
    probe = {}
    grown.heads["fine"].classify.register_forward_hook(lambda m, i, out: probe.update(out=out))
    assert "fine" in grown.heads and "fine" not in plain.heads
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():   # the same logits, upsampled in two steps instead of one
        before, after = plain(x)["logits"], grown(x)["logits"]
    assert probe["out"].shape[-2:] == (64 // fine_stride, 64 // fine_stride)
    assert (after - before).abs().max() < 0.1 * before.abs().max()
    assert (after.argmax(1) == before.argmax(1)).float().mean() > 0.95
    grown.train()
    optimizer = torch.optim.SGD(grown.heads["fine"].parameters(), lr=0.1)
    target = torch.randint(0, CELEBAMASK.num_classes, (2, 64, 64))
    for _ in range(2):   # the zero-initialised last layer moves first, then the rest follows
        optimizer.zero_grad()
        ParsingLoss(LossConfig(), CELEBAMASK)(grown(x), target)[0].backward()
        optimizer.step()
    assert grown.heads["fine"].classify.weight.abs().sum() > 0
    assert grown.heads["fine"].image[0].weight.grad.abs().sum() > 0
    with pytest.raises(FacetError, match="only be grown by adding heads"):
        grow_face_parser(plain, plain.config.replace(fine_head=True, context_channels=64))
    # the fine head swapped for one of the other stride: a new head, the rest kept
    swapped = grow_face_parser(grown, grown.config.replace(fine_stride=3 - fine_stride)).eval()
    assert swapped.heads["fine"].classify.weight.abs().sum() == 0
    assert torch.equal(swapped.decoder.fuse[0][0].weight, grown.decoder.fuse[0][0].weight)
    with torch.no_grad():
        assert (swapped(x)["logits"].argmax(1) == before.argmax(1)).float().mean() > 0.95
