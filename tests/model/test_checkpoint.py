"""Checkpoints: a round trip gives the same outputs; broken files give one clear error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.checkpoint import load_checkpoint, save_checkpoint
from model.net import ParserConfig, build_face_parser


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    config = ParserConfig.small(input_size=64, attention=True)
    model = build_face_parser(config)
    with torch.no_grad():          # non-trivial BN statistics, so buffers must survive too
        model.train()(torch.rand(4, 3, 64, 64))
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "parser.pt"
    save_checkpoint(path, model, config, CELEBAMASK, {"steps": 3, "note": "test"})
    return path, model, config


def test_round_trip_gives_identical_outputs(saved):
    path, model, config = saved
    ckpt = load_checkpoint(path)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)["logits"], ckpt.model(x)["logits"])
    assert ckpt.config == config and ckpt.labels == CELEBAMASK
    assert ckpt.meta == {"steps": 3, "note": "test"}
    assert not ckpt.model.training
    assert [p.name for p in path.parent.iterdir()] == ["parser.pt"]   # no temp files left


def test_extra_classes_survive(tmp_path):
    labels = LabelSet.celebamask(extras=True)
    config = ParserConfig.small(labels, input_size=64)
    save_checkpoint(tmp_path / "x.pt", build_face_parser(config), config, labels, {})
    ckpt = load_checkpoint(tmp_path / "x.pt")
    assert ckpt.labels.names[-2:] == ("hand", "mask") and ckpt.config.num_classes == 21


def test_missing_truncated_and_foreign_files(saved, tmp_path):
    path, _, _ = saved
    with pytest.raises(FacetError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FacetError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "junk.pt").write_bytes(b"hello")
    with pytest.raises(FacetError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(FacetError, match="not a Facet parser checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_meta_must_be_json(tmp_path):
    config = ParserConfig.small(input_size=64)
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(tmp_path / "m.pt", build_face_parser(config), config, CELEBAMASK,
                        {"array": np.zeros(3)})
    assert not (tmp_path / "m.pt").exists()
