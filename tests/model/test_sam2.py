"""SAM 2.1 through the same contract as SAM: a checkpoint by path, the embedding once, on disk
in float16, and clicks (with candidates and refinement) that never run the image encoder.
A tiny random-weight model built from the ``sam2`` package's own tiny config."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sam2")

from model.sam import SamEmbedding, SamError, SamModel  # noqa: E402
from model.sam2_model import Sam2Model, sam2_builders  # noqa: E402
from model.sam_types import SAM2_CONFIGS  # noqa: E402
from tests.model.tiny_sam import (TINY2_BUILDERS, TINY_BUILDERS, write_tiny_checkpoint,  # noqa: E402
                                  write_tiny_sam2_checkpoint)


@pytest.fixture(scope="module")
def sam2(tmp_path_factory) -> Sam2Model:
    path = write_tiny_sam2_checkpoint(tmp_path_factory.mktemp("sam2") / "sam2.1_tiny2.pt")
    model = SamModel.from_checkpoint(path, "tiny2", builders=TINY2_BUILDERS)
    assert isinstance(model, Sam2Model)
    return model


def _image(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(h * w)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (200, 150, 110)
    return img


def test_every_official_sam2_type_has_a_builder_and_its_config_ships_with_sam2():
    from importlib.resources import files

    assert set(sam2_builders()) == set(SAM2_CONFIGS)
    missing = [c for c in SAM2_CONFIGS.values() if not files("sam2").joinpath(c).is_file()]
    assert missing == [], f"configs the sam2 package does not have: {missing}"


def test_the_embedding_is_stored_in_float16_and_clicks_never_run_the_encoder(sam2, tmp_path):
    emb = sam2.compute_embedding(_image(96, 128))
    assert emb.features.dtype == np.float16 and len(emb.high_res) == 2
    path = tmp_path / "e.npz"
    emb.save(path)
    back = SamEmbedding.load(path)
    assert [h.shape for h in back.high_res] == [h.shape for h in emb.high_res]
    assert all(h.dtype == np.float16 for h in back.high_res)

    calls = []
    hook = sam2.sam.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = sam2.answer(back, [(64, 48, 1)])
        assert first.mask.shape == (96, 128) and first.mask.dtype == bool
        assert first.candidate is not None and first.low_res.ndim == 4
        picked = [sam2.answer(back, [(64, 48, 1)], candidate=k) for k in range(3)]
        assert [a.candidate for a in picked] == [0, 1, 2]
        assert first.candidate == int(np.argmax([a.score for a in picked]))
        refined = sam2.answer(back, [(64, 48, 1), (5, 5, 0)], mask_input=first.low_res)
        assert refined.candidate is None and refined.mask.shape == (96, 128)
        boxed, _ = sam2.predict(back, [], (10, 10, 100, 80))
        assert boxed.shape == (96, 128)
    finally:
        hook.remove()
    assert calls == [], "a click ran the image encoder"


def test_wrong_embeddings_and_prompts_are_refused(sam2, tmp_path):
    sam1 = SamModel.from_checkpoint(write_tiny_checkpoint(tmp_path / "s1.pth"), "tiny",
                                    builders=TINY_BUILDERS)
    other = sam1.compute_embedding(_image(64, 64))
    with pytest.raises(SamError, match="computed by"):
        sam2.answer(other, [(5, 5, 1)])
    emb = sam2.compute_embedding(_image(64, 64))
    with pytest.raises(SamError, match="outside"):
        sam2.answer(emb, [(500, 5, 1)])
    with pytest.raises(SamError, match="ONNX"):
        sam2.answer(emb, [(5, 5, 1)], backend="onnx")
    with pytest.raises(SamError, match="mask_input"):
        sam2.answer(emb, [(5, 5, 1)], mask_input=np.zeros((8, 8)))
    assert sam2.backend == "torch" and sam2.enable_onnx(tmp_path / "x.onnx") is False
