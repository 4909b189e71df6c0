"""Bring your own parser (model/foreign.py, the facet-foreign checkpoint in model/checkpoint.py,
``add-parser`` in webapp/foreign_cli.py): a TorchScript or ONNX parser in another class order
pre-annotates with Facet's ids, loads through every loader, can teach, and cannot be fine-tuned."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import app
from core.errors import FacetError
from core.labels import BISENET_ORDER, CELEBAMASK, CELEBAMASK_NAMES, FARL_ORDER
from model.checkpoint import load_checkpoint
from model.foreign import (ABSENT_LOGIT, ForeignParser, ForeignSpec, parse_label_order,
                           parse_triple, read_foreign, save_foreign)
from model.inference import Predictor
from model.predictor_cache import PredictorCache
from tests.model.foreign_models import onnx_file, painted, torchscript_file

ORDERS = {"bisenet": BISENET_ORDER, "farl": FARL_ORDER, "celebamask": CELEBAMASK_NAMES}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The colour-coded parser as TorchScript and ONNX files, exported once."""
    d = tmp_path_factory.mktemp("foreign")
    return {
        "torchscript": torchscript_file(d / "parser.pt"),
        "onnx": onnx_file(d / "parser.onnx"),
        "onnx48": onnx_file(d / "fixed48.onnx", size=48),
        "four": torchscript_file(d / "four.pt", channels=4, mean=(0, 0, 0), std=(1, 1, 1),
                                 as_dict=True),
    }


def expected(order, ids: np.ndarray) -> np.ndarray:
    names = ORDERS[order] if isinstance(order, str) else order
    return np.array([CELEBAMASK.id(n) for n in names], dtype=np.uint8)[ids]


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
@pytest.mark.parametrize("order", ["bisenet", "farl", "celebamask"])
def test_pre_annotation_has_facet_ids_for_each_order(files, tmp_path, kind, order):
    path = tmp_path / "ckpt.pt"
    save_foreign(path, read_foreign(files[kind], order, 64))
    # the painted squares are no face: their mirror image is not a face with left and right
    # swapped, so the id mapping is checked on the image alone
    predictor = Predictor.load(path, flip_average=False)
    image, ids = painted()
    label, conf = predictor.predict(image)
    np.testing.assert_array_equal(label, expected(order, ids))
    assert label.dtype == np.uint8 and conf.min() > 0.5
    assert len(np.unique(label)) == 19  # every class somewhere


def test_a_names_list_maps_aliases_and_unknown_names_to_background(files, tmp_path):
    names = ("background", "hair", "moustache", "face")  # face: facer's name of skin
    parser = read_foreign(files["four"], parse_label_order(",".join(names)), 64,
                          mean=(0, 0, 0), std=(1, 1, 1))
    assert parser.spec.class_names() == ("background", "hair", "background", "skin")
    assert parser.spec.unknown_names() == ("moustache",)
    save_foreign(tmp_path / "four.pt", parser)
    image, ids = painted(channels=4)
    label, _ = Predictor.load(tmp_path / "four.pt").predict(image)
    np.testing.assert_array_equal(label, np.array([0, 13, 0, 1], np.uint8)[ids])
    logits = parser(torch.rand(2, 3, 64, 64))["logits"]
    assert logits.shape == (2, 19, 64, 64)
    assert (logits[:, CELEBAMASK.id("nose")] == ABSENT_LOGIT).all()  # a class it lacks


def test_input_size_and_batch_come_from_a_fixed_onnx_model(files, tmp_path):
    parser = read_foreign(files["onnx48"], "bisenet")  # no --input-size: the model says 48
    assert parser.spec.input_size == 48 and parser.config.input_size == 64
    save_foreign(tmp_path / "c.pt", parser)
    predictor = Predictor.load(tmp_path / "c.pt", flip_average=False)  # squares, not a face
    images = [painted(size, block=size // 8) for size in (64, 96, 64)]
    out = predictor.predict_batch([im for im, _ in images])  # batch 3 through a batch-1 model
    for (label, _), (image, ids) in zip(out, images):
        b = image.shape[0] // 8
        centres = (slice(b // 2 - 1, None, b),) * 2  # a pixel near each square's centre
        np.testing.assert_array_equal(label[centres], expected("bisenet", ids)[centres])


def test_the_checkpoint_is_self_contained_and_every_loader_reads_it(files, tmp_path):
    source = tmp_path / "mine.onnx"
    source.write_bytes(files["onnx"].read_bytes())
    parser = read_foreign(source, "farl", 64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    save_foreign(tmp_path / "c.pt", parser, {"note": "mine"})
    source.unlink()
    payload = torch.load(tmp_path / "c.pt", weights_only=True)  # tensors and plain containers
    assert payload["format"] == "facet-foreign"
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert isinstance(ckpt.model, ForeignParser) and not ckpt.model.training
    assert ckpt.labels == CELEBAMASK and ckpt.config.input_size == 64
    assert ckpt.meta["note"] == "mine"
    spec = ForeignSpec.from_dict(json.loads(json.dumps(ckpt.meta["foreign"])))
    assert spec == parser.spec and spec.mean == (0.5, 0.5, 0.5) and spec.kind == "onnx"
    cache = PredictorCache()
    assert isinstance(cache.get(tmp_path / "c.pt").model, ForeignParser)


@pytest.mark.parametrize("labels, match", [
    ("bisenet", "outputs 4 channels but the label order 'bisenet' names 19 classes"),
    ("background,skin,hair", "outputs 4 channels but the label order 'custom' names 3"),
])
def test_a_label_order_that_does_not_fit_the_outputs_is_refused(files, labels, match):
    with pytest.raises(FacetError, match=match):
        read_foreign(files["four"], parse_label_order(labels), 64)


def test_bad_inputs_give_clear_errors(files, tmp_path):
    with pytest.raises(FacetError, match="unknown label order 'celeba'"):
        parse_label_order("celeba")
    with pytest.raises(FacetError, match="empty class name"):
        parse_label_order("background,,hair")
    with pytest.raises(FacetError, match="three finite numbers"):
        parse_triple("0.5,0.5", "--mean")
    with pytest.raises(FacetError, match="std must be positive"):
        read_foreign(files["torchscript"], "bisenet", 64, std=(1, 0, 1))
    with pytest.raises(FacetError, match="parser file not found"):
        read_foreign(tmp_path / "nothing.onnx", "bisenet", 64)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 this is not a model" * 10)
    with pytest.raises(FacetError, match="garbage.onnx is not a readable ONNX model"):
        read_foreign(garbage, "bisenet", 64)
    weights = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(19, 3, 1, 1)}, weights)  # a state dict, not a module
    with pytest.raises(FacetError, match="weights.pt is not a TorchScript module"):
        read_foreign(weights, "bisenet", 64)
    with pytest.raises(FacetError, match="give --input-size"):
        read_foreign(files["torchscript"], "bisenet")
    with pytest.raises(FacetError, match="takes 48 x 48 images; give --input-size 48"):
        read_foreign(files["onnx48"], "bisenet", 64)


def test_it_teaches_but_cannot_be_fine_tuned(files, tmp_path):
    from model.net import ParserConfig
    from model.train import train_steps

    save_foreign(tmp_path / "c.pt", read_foreign(files["torchscript"], "bisenet", 64))
    teacher = load_checkpoint(tmp_path / "c.pt")
    image, ids = painted()
    samples = [(image, expected("bisenet", ids))]
    config = ParserConfig.small(input_size=64, context_channels=16, decoder_channels=16,
                                skip_channels=8, edge_channels=8)
    result = train_steps(samples, config, 2, batch_size=1, teacher=teacher, unlabeled=[image],
                         unlabeled_batch=1)  # channels_last by default
    assert result.meta["distill"]["teacher"] == "checkpoint" and result.meta["init"] is None
    assert np.isfinite(result.meta["final_losses"]["distill"])
    with pytest.raises(FacetError, match="cannot be the starting point of training"):
        train_steps(samples, None, 1, init=teacher)


def test_add_parser_registers_a_version(files, settings, capsys):
    from db.database import open_database
    from db.engine import session_scope
    from db.versions import active_version, list_versions

    data = ["--data-dir", str(settings.data_dir)]
    assert app.main(["add-parser", str(files["onnx"]), "--labels", "bisenet",
                     "--input-size", "64", *data]) == 0
    assert app.main(["add-parser", str(files["torchscript"]), "--labels", "farl",
                     "--input-size", "64", "--mean", "0,0,0", "--std", "1,1,1", "--activate",
                     *data]) == 0
    assert "as model v2, now active" in capsys.readouterr().out
    assert app.main(["add-parser", str(files["four"]), "--labels", "bisenet",
                     "--input-size", "64", *data]) == 2
    assert "outputs 4 channels" in capsys.readouterr().err
    sessions = open_database(settings)
    with session_scope(sessions) as s:
        versions = list_versions(s)
        active = active_version(s)
        assert len(versions) == 2 and active.id == versions[0].id
        assert active.note == "your parser: parser.pt (farl labels)"
        assert versions[1].note == "your parser: parser.onnx (bisenet labels)"
        assert not versions[1].is_active and active.num_labels == 0
        path = settings.data_dir / active.checkpoint_path
    sessions.kw["bind"].dispose()
    assert path.parent == settings.models_dir
    assert {p.name for p in settings.models_dir.iterdir()} == {"parser-parser.pt",
                                                               "parser-parser-2.pt"}
    ckpt = load_checkpoint(path)
    assert ckpt.meta["foreign"]["label_order"] == "farl" and ckpt.meta["foreign"]["std"] == [1, 1, 1]
    image, ids = painted()
    label, _ = Predictor(ckpt.model, ckpt.config, ckpt.labels).predict(image)
    assert label.max() < 19
