"""SAM wrapper: checkpoint by path, float16 embedding files, clicks that never re-run the encoder."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model.sam import SamEmbedding, SamError, SamModel
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint


@pytest.fixture()
def sam(tmp_path) -> SamModel:
    return SamModel.from_checkpoint(write_tiny_checkpoint(tmp_path / "tiny.pth"), "tiny",
                                    builders=TINY_BUILDERS)


def _count_encoder_calls(sam: SamModel) -> list[int]:
    calls = [0]
    sam.sam.image_encoder.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _face(h: int = 96, w: int = 128) -> np.ndarray:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    img[20:70, 40:90] = (220, 180, 150)
    return img


def test_checkpoint_loads_exact_weights_and_key_names_the_file(tmp_path, sam):
    ref = TINY_BUILDERS["tiny"]()
    for name, tensor in ref.state_dict().items():
        assert torch.equal(tensor, sam.sam.state_dict()[name]), name
    assert sam.key.startswith("tiny:") and len(sam.key) == len("tiny:") + 12


def test_embedding_computed_once_then_clicks_reuse_it(tmp_path, sam):
    calls = _count_encoder_calls(sam)
    emb = sam.compute_embedding(_face())
    assert calls[0] == 1
    assert emb.features.dtype == np.float16 and emb.features.shape == (1, 32, 16, 16)
    assert emb.original_size == (96, 128) and emb.input_size == (192, 256)

    emb.save(tmp_path / "e.npz")
    restored = SamEmbedding.load(tmp_path / "e.npz")
    assert np.array_equal(restored.features, emb.features)
    for pts, box in [([(60, 40, 1)], None), ([(60, 40, 1), (5, 5, 0)], None),
                     ([], (30, 10, 100, 80)), ([(60, 40, 1)], (30, 10, 100, 80))]:
        mask, score = sam.predict(restored, pts, box)
        assert mask.shape == (96, 128) and mask.dtype == bool and np.isfinite(score)
    assert calls[0] == 1, "a click ran the image encoder"


def test_restored_embedding_matches_a_fresh_predictor(sam):
    from segment_anything import SamPredictor
    img = _face()
    emb = sam.compute_embedding(img)
    ours, _ = sam.predict(emb, [(60, 40, 1), (10, 10, 0)])
    ref = SamPredictor(sam.sam)
    ref.set_image(img)
    ref.features = ref.features.half().float()   # the float16 round trip is the only difference
    masks, _, _ = ref.predict(np.array([[60, 40], [10, 10]]), np.array([1, 0]), multimask_output=False)
    assert np.array_equal(ours, masks[0])


@pytest.mark.parametrize("points,box,match", [
    ([], None, "at least one"),
    ([(200, 10, 1)], None, "outside"),
    ([(10, 10, 2)], None, r"\[x, y, 1\|0\]"),
    ([], (50, 10, 20, 80), "x0 < x1"),
])
def test_bad_prompts_are_refused_with_a_reason(sam, points, box, match):
    emb = sam.compute_embedding(_face())
    with pytest.raises(SamError, match=match):
        sam.predict(emb, points, box)


def test_bad_checkpoints_and_mismatched_embeddings(tmp_path, sam):
    with pytest.raises(SamError, match="not found"):
        SamModel.from_checkpoint(tmp_path / "missing.pth", "tiny", builders=TINY_BUILDERS)
    with pytest.raises(SamError, match="unknown SAM model"):
        SamModel.from_checkpoint(tmp_path / "missing.pth", "vit_x")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SamError, match="cannot read"):
        SamModel.from_checkpoint(junk, "tiny", builders=TINY_BUILDERS)
    torch.save({"image_encoder.pos_embed": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(SamError, match="do not fit"):
        SamModel.from_checkpoint(tmp_path / "wrong.pth", "tiny", builders=TINY_BUILDERS)
    emb = sam.compute_embedding(_face())
    other = SamEmbedding(emb.features, emb.original_size, emb.input_size, "vit_b:000000000000")
    with pytest.raises(SamError, match="computed by"):
        sam.predict(other, [(5, 5, 1)])
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(SamError, match="not a SAM embedding"):
        SamEmbedding.load(tmp_path / "bad.npz")
