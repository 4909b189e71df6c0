"""The synthetic face prior: the endless stream, the ``pretrain`` command, and the prior that
ships with Facet (assets/face-prior.pt)."""
from __future__ import annotations

import numpy as np
import pytest

from core.labels import CELEBAMASK
from model.augment import AugmentConfig
from model.checkpoint import load_checkpoint
from model.inference import Predictor
from model.prior import SynthFaceStream, score_prior
from webapp.options import SHIPPED_PRIOR


def test_the_stream_renders_new_faces_of_both_styles_with_exact_labels():
    stream = SynthFaceStream(64, 4, CELEBAMASK, AugmentConfig.none(), seed=0)
    rng = np.random.default_rng(1)
    a, b = stream.draw(rng), stream.draw(rng)
    assert a["images"].shape == (4, 3, 64, 64) and a["targets"].shape == (4, 64, 64)
    assert not np.array_equal(a["images"].numpy(), b["images"].numpy())
    assert int(a["targets"].max()) < CELEBAMASK.num_classes
    assert len({tuple(t.unique().tolist()) for t in a["targets"]}) > 1   # different faces


def test_pretrain_writes_a_checkpoint_with_its_recipe_and_per_class_scores(tmp_path, capsys):
    from app import main

    out = tmp_path / "prior.pt"
    assert main(["pretrain", "--out", str(out), "--steps", "2", "--batch-size", "2",
                 "--input-size", "64", "--eval-faces", "1", "--half", "--threads", "1"]) == 0
    ckpt = load_checkpoint(out)
    meta = ckpt.meta
    assert ckpt.config.backbone == "mobilenet_v3_large" and ckpt.config.input_size == 64
    assert meta["steps"] == 2 and meta["recipe"]["seed"] == 0 and meta["prior"]["faces_seen"] == 4
    assert set(meta["metrics"]["by_style"]) == {"studio", "wild"}
    assert "skin" in meta["metrics"]["per_class_f1"]
    assert "| **mean F1** |" in capsys.readouterr().out


@pytest.mark.skipif(not SHIPPED_PRIOR.is_file(), reason="no shipped prior in this checkout")
def test_the_shipped_prior_scores_its_recorded_f1_on_other_synthetic_faces():
    ckpt = load_checkpoint(SHIPPED_PRIOR)
    recorded = ckpt.meta["metrics"]
    assert min(recorded["per_class_f1"][n] for n in ("skin", "hair", "nose", "l_eye", "r_eye")) > 0.5
    fresh = score_prior(Predictor(ckpt.model, ckpt.config, ckpt.labels), count=6,
                        size=ckpt.config.input_size, first=1000)
    assert abs(fresh["mean_f1"] - recorded["mean_f1"]) < 0.08, (fresh["mean_f1"], recorded["mean_f1"])
