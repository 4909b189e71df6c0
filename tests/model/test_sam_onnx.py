"""SAM clicks through ONNX Runtime: same masks as PyTorch, exported once, PyTorch as fallback."""
from __future__ import annotations

import logging
import shutil
import sys
import threading
from functools import partial

import numpy as np
import pytest
import torch

import model.sam_onnx as sam_onnx
from model.sam import CANDIDATES, SamEmbedding, SamError, SamModel
from model.sam_onnx import OnnxClickDecoder, decoder_path, onnx_prompts
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint

PROMPTS = {  # as fractions of (w, h): clicks (x, y, label), box (x0, y0, x1, y1)
    "1 click": ([(0.5, 0.5, 1)], None),
    "3 clicks": ([(0.5, 0.5, 1), (0.05, 0.05, 0), (0.35, 0.6, 1)], None),
    "box": ([], (0.25, 0.2, 0.8, 0.75)),
    "box + click": ([(0.5, 0.5, 1)], (0.25, 0.2, 0.8, 0.75)),
}


def _prompts(name: str, h: int, w: int):
    pts, box = PROMPTS[name]
    pts = [(x * w, y * h, lab) for x, y, lab in pts]
    box = None if box is None else (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
    return pts, box


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _image(h: int, w: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    img[h // 5: 4 * h // 5, w // 4: 3 * w // 4] = (220, 180, 150)
    return img


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One tiny checkpoint and its exported decoder, shared by the module's tests."""
    root = tmp_path_factory.mktemp("sam_onnx")
    ckpt = write_tiny_checkpoint(root / "tiny.pth")
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    path = decoder_path(root / "cache", model.key)
    assert model.enable_onnx(path, threads=1) and model.backend == "onnx"
    return ckpt, path


@pytest.fixture()
def sam(exported, tmp_path) -> SamModel:
    """A fresh tiny model on a copy of the exported decoder (tests may break their copy)."""
    ckpt, path = exported
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    mine = decoder_path(tmp_path, model.key)
    mine.parent.mkdir(parents=True)
    shutil.copy(path, mine)
    before = sam_onnx.exports
    assert model.enable_onnx(mine, threads=1)
    assert sam_onnx.exports == before, "a cached decoder was exported again"
    return model


@pytest.mark.parametrize("size", [(96, 128), (128, 96), (150, 100), (64, 64)])
def test_onnx_and_pytorch_masks_agree(sam, size):
    h, w = size
    emb = sam.compute_embedding(_image(h, w))
    for name in PROMPTS:
        pts, box = _prompts(name, h, w)
        m_torch, s_torch, low_torch = sam.predict_logits(emb, pts, box, backend="torch")
        m_onnx, s_onnx, low_onnx = sam.predict_logits(emb, pts, box, backend="onnx")
        assert m_onnx.shape == (h, w) and m_onnx.dtype == bool, name
        assert low_onnx.shape == low_torch.shape == (1, 1, 64, 64), name
        assert _iou(m_torch, m_onnx) >= 0.99, (name, _iou(m_torch, m_onnx))
        assert s_onnx == pytest.approx(s_torch, abs=1e-4), name
        np.testing.assert_allclose(low_onnx, low_torch, atol=1e-3, err_msg=name)
        # The default path is ONNX once enabled.
        default, _ = sam.predict(emb, pts, box)
        assert np.array_equal(default, m_onnx), name


def test_previous_logits_as_mask_input_agree(sam):
    emb = sam.compute_embedding(_image(96, 128))
    _, _, low = sam.predict_logits(emb, [(64, 48, 1)], backend="torch")
    a, sa = sam.predict(emb, [(64, 48, 1), (10, 10, 0)], mask_input=low, backend="torch")
    b, sb = sam.predict(emb, [(64, 48, 1), (10, 10, 0)], mask_input=low, backend="onnx")
    assert _iou(a, b) >= 0.99 and sb == pytest.approx(sa, abs=1e-4)
    with pytest.raises(SamError, match="mask_input"):
        sam.predict(emb, [(64, 48, 1)], mask_input=np.zeros((8, 8)))


def test_a_lone_click_offers_three_candidates_alike_on_both_paths(sam):
    emb = sam.compute_embedding(_image(96, 128))
    click = [(64, 48, 1)]
    best_t = sam.answer(emb, click, backend="torch")
    best_o = sam.answer(emb, click, backend="onnx")
    assert best_t.candidate == best_o.candidate is not None
    scores = []
    for k in range(CANDIDATES):
        t = sam.answer(emb, click, candidate=k, backend="torch")
        o = sam.answer(emb, click, candidate=k, backend="onnx")
        assert t.candidate == o.candidate == k
        assert _iou(t.mask, o.mask) >= 0.99 and o.score == pytest.approx(t.score, abs=1e-4), k
        scores.append(t.score)
    assert best_t.candidate == int(np.argmax(scores))   # no candidate asked: the best-scored
    several = sam.answer(emb, click + [(10, 10, 0)], candidate=2, backend="onnx")
    assert several.candidate is None                    # several clicks: the single mask
    with pytest.raises(SamError, match="candidate"):
        sam.answer(emb, click, candidate=3)


def test_prompt_layout_follows_segment_anything_onnx_example():
    scale = partial(lambda c, f: c * f, f=2.0)
    coords, labels = onnx_prompts(np.array([[10.0, 20.0], [3.0, 4.0]]), np.array([1, 0]), None,
                                  scale)
    assert coords.tolist() == [[20, 40], [6, 8], [0, 0]] and labels.tolist() == [1, 0, -1]
    coords, labels = onnx_prompts(np.zeros((0, 2)), np.zeros(0), np.array([1.0, 2, 3, 4]), scale)
    assert coords.tolist() == [[2, 4], [6, 8]] and labels.tolist() == [2, 3]
    coords, labels = onnx_prompts(np.array([[5.0, 5]]), np.array([1]), np.array([1.0, 2, 3, 4]),
                                  scale)
    assert coords.tolist() == [[10, 10], [2, 4], [6, 8]] and labels.tolist() == [1, 2, 3]
    assert coords.dtype == labels.dtype == np.float32


def test_decoder_is_exported_once_and_reused(exported, tmp_path):
    ckpt, _ = exported
    first = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    path = decoder_path(tmp_path / "cache", first.key)
    before = sam_onnx.exports
    assert first.enable_onnx(path, threads=1)
    assert sam_onnx.exports == before + 1 and path.is_file()
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert first.enable_onnx(path, threads=1)                # already on: nothing happens
    second = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    assert second.enable_onnx(path, threads=1) and second.backend == "onnx"
    assert sam_onnx.exports == before + 1
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    assert sorted(p.name for p in path.parent.iterdir()) == ["decoder.onnx"]


def test_concurrent_exporters_leave_one_whole_file(exported, tmp_path):
    ckpt, _ = exported
    models = [SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS) for _ in range(3)]
    path = decoder_path(tmp_path, models[0].key)
    before = sam_onnx.exports
    results: list[bool] = []
    threads = [threading.Thread(target=lambda m=m: results.append(m.enable_onnx(path, threads=1)))
               for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 3 and sam_onnx.exports == before + 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["decoder.onnx"]
    # Two exports racing to the same path (other processes): each writes a temporary file and
    # renames it, so the file is always whole.
    for _ in range(2):
        sam_onnx.export_decoder(models[0].sam, models[0].key, path)
    OnnxClickDecoder.open(path, models[0].key, models[0].encoder_size, threads=1)
    assert sorted(p.name for p in path.parent.iterdir()) == ["decoder.onnx"]


def test_a_broken_or_foreign_cached_file_is_exported_again(exported, tmp_path, caplog):
    ckpt, good = exported
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    path = decoder_path(tmp_path, model.key)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    before = sam_onnx.exports
    with caplog.at_level(logging.WARNING, logger="facet.sam"):
        assert model.enable_onnx(path, threads=1)
    assert sam_onnx.exports == before + 1 and "exporting it again" in caplog.text
    with pytest.raises(ValueError, match="not facet-sam-click-decoder"):
        OnnxClickDecoder.open(good, "tiny:000000000000", model.encoder_size)


def test_pytorch_answers_when_onnxruntime_is_missing(exported, tmp_path, monkeypatch, caplog):
    ckpt, _ = exported
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # import fails
    with caplog.at_level(logging.WARNING, logger="facet.sam"):
        assert not model.enable_onnx(decoder_path(tmp_path, model.key), threads=1)
        assert not model.enable_onnx(decoder_path(tmp_path, model.key), threads=1)
    assert model.backend == "torch" and caplog.text.count("clicks use PyTorch") == 1
    emb = model.compute_embedding(_image(96, 128))
    mask, score = model.predict(emb, [(60, 40, 1)])
    assert mask.shape == (96, 128) and np.isfinite(score)
    with pytest.raises(SamError, match="not enabled"):
        model.predict(emb, [(60, 40, 1)], backend="onnx")


def test_pytorch_answers_when_the_export_fails(exported, tmp_path, monkeypatch):
    ckpt, _ = exported
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)

    def broken(*_a, **_k):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch.onnx, "export", broken)
    path = decoder_path(tmp_path, model.key)
    assert not model.enable_onnx(path, threads=1) and model.backend == "torch"
    assert not path.exists() and not any(path.parent.glob("*"))


def test_pytorch_answers_when_an_onnx_run_fails(sam, caplog):
    emb = sam.compute_embedding(_image(96, 128))
    expected, _ = sam.predict(emb, [(60, 40, 1)], backend="torch")

    class Broken:
        def run(self, *_a, **_k):
            raise RuntimeError("onnxruntime fell over")

    sam._onnx.session = Broken()  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING, logger="facet.sam"):
        for _ in range(2):
            mask, _ = sam.predict(emb, [(60, 40, 1)])
            assert np.array_equal(mask, expected)
    assert sam.backend == "torch" and caplog.text.count("onnxruntime fell over") == 1


def test_sam_service_loads_the_decoder_from_the_cache_dir(exported, tmp_path):
    from db.settings import Settings
    from webapp.sam_service import SamService

    ckpt, _ = exported
    settings = Settings.resolve(tmp_path / "data")
    model = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    SamService(settings, None, model, onnx=False)  # type: ignore[arg-type]
    assert model.backend == "torch" and not (settings.cache_dir / "sam").exists()
    before = sam_onnx.exports
    SamService(settings, None, model, onnx_threads=1)  # type: ignore[arg-type]
    path = settings.cache_dir / "sam" / model.key.replace(":", "-") / "decoder.onnx"
    assert model.backend == "onnx" and path.is_file() and sam_onnx.exports == before + 1
    again = SamModel.from_checkpoint(ckpt, "tiny", builders=TINY_BUILDERS)
    SamService(settings, None, again, onnx_threads=1)  # type: ignore[arg-type]
    assert again.backend == "onnx" and sam_onnx.exports == before + 1


def test_official_sized_decoder_agrees(tmp_path):
    """The official mask decoder (4 M parameters, 64 x 64 embedding, 1024 input) behind a
    small encoder: its random embedding stands in for a computed one."""
    from segment_anything.build_sam import _build_sam

    with torch.random.fork_rng():
        torch.manual_seed(0)
        sam = _build_sam(encoder_embed_dim=64, encoder_depth=2, encoder_num_heads=2,
                         encoder_global_attn_indexes=[1], checkpoint=None)
    model = SamModel(sam, "small", "small:000000000000")
    assert model.enable_onnx(decoder_path(tmp_path, model.key), threads=1)
    h, w = 300, 400
    rng = np.random.default_rng(0)
    emb = SamEmbedding(rng.standard_normal((1, 256, 64, 64)).astype(np.float16), (h, w),
                       (768, 1024), model.key)
    for name in PROMPTS:
        pts, box = _prompts(name, h, w)
        a, sa = model.predict(emb, pts, box, backend="torch")
        b, sb = model.predict(emb, pts, box, backend="onnx")
        assert _iou(a, b) >= 0.99 and sb == pytest.approx(sa, abs=1e-4), name
