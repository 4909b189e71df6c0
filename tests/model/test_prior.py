"""The synthetic face prior: the endless stream, the ``pretrain`` command, and the prior that
ships with Facet (assets/face-prior.pt)."""
from __future__ import annotations

import numpy as np
import pytest

from core.errors import FacetError
from core.labels import CELEBAMASK, THIN_CLASSES
from model.augment import AugmentConfig
from model.calibration import STRENGTHS
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


def test_rare_boost_shows_earrings_and_necklaces_more_often():
    def share_with_thin_parts(boost: float) -> float:
        stream = SynthFaceStream(64, 1, CELEBAMASK, AugmentConfig.none(), seed=0, rare_boost=boost)
        rng = np.random.default_rng(3)
        thin = [CELEBAMASK.id(n) for n in THIN_CLASSES]
        return float(np.mean([np.isin(stream.render(rng)[1], thin).any() for _ in range(24)]))

    plain, boosted = share_with_thin_parts(0.0), share_with_thin_parts(1.0)
    assert boosted >= 0.8 and boosted > plain + 0.25, (plain, boosted)
    with pytest.raises(FacetError, match="rare_boost"):
        SynthFaceStream(64, 1, CELEBAMASK, AugmentConfig.none(), seed=0, rare_boost=1.5)


def test_pretrain_writes_a_checkpoint_with_its_recipe_and_per_class_scores(tmp_path, capsys):
    from app import main

    out = tmp_path / "prior.pt"
    assert main(["pretrain", "--out", str(out), "--steps", "2", "--batch-size", "2",
                 "--input-size", "64", "--eval-faces", "1", "--tune-faces", "2", "--half",
                 "--threads", "1"]) == 0
    ckpt = load_checkpoint(out)
    meta = ckpt.meta
    assert ckpt.config.backbone == "resnet18" and ckpt.config.input_size == 64
    assert meta["steps"] == 2 and meta["recipe"]["seed"] == 0 and meta["prior"]["faces_seen"] == 4
    assert set(meta["metrics"]["by_style"]) == {"studio", "wild"}
    assert "skin" in meta["metrics"]["per_class_f1"]
    assert "| **mean F1** |" in capsys.readouterr().out
    assert meta["tuning_faces"] == 2 and meta["prior"]["rare_boost"] == 0.8  # the defaults
    augment = meta["recipe"]["augment"]  # the stream's faces are not warped or blurred
    assert augment["scale"] == [1.0, 1.0] and augment["rotation_deg"] == 0.0
    assert augment["shift"] == 0.0 and augment["blur_prob"] == 0.0
    assert augment["flip_prob"] > 0 and augment["brightness"] > 0
    assert main(["pretrain", "--out", str(tmp_path / "no.pt"), "--tune-faces", "0"]) != 0
    assert "--tune-faces must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "no.pt").exists()


def test_pretrain_goes_on_from_a_checkpoint_keeping_its_config_and_can_add_the_fine_head(tmp_path, capsys):
    from app import main

    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    common = ["--steps", "1", "--batch-size", "2", "--eval-faces", "1", "--tune-faces", "1",
              "--threads", "1"]
    assert main(["pretrain", "--out", str(first), "--config", "small", "--input-size", "64",
                 *common]) == 0
    assert main(["pretrain", "--out", str(second), "--init", str(first), "--input-size", "128",
                 "--rare-boost", "0.5", "--thin-weight", "6", "--fine-head", *common]) == 0
    ckpt = load_checkpoint(second)
    # small at 64 px (not 128), grown by the full-resolution fine head (the default stride)
    assert ckpt.config == load_checkpoint(first).config.replace(fine_head=True, fine_stride=1)
    assert ckpt.meta["prior"]["continued_from"] == str(first)
    assert ckpt.meta["prior"]["rare_boost"] == 0.5
    assert ckpt.meta["recipe"]["loss"]["class_weights"]["ear_r"] == 6.0
    # the strength that undid those weights best on faces set aside for it, recorded for the app
    assert ckpt.meta["logit_adjustment"] in STRENGTHS
    # going on with --fine-head keeps that head's stride; --fine-stride alone is refused
    third, fourth = tmp_path / "third.pt", tmp_path / "fourth.pt"
    assert main(["pretrain", "--out", str(third), "--init", str(first), "--fine-head",
                 "--fine-stride", "2", *common]) == 0
    assert main(["pretrain", "--out", str(fourth), "--init", str(third), "--fine-head",
                 *common]) == 0
    assert load_checkpoint(fourth).config.fine_stride == 2
    assert main(["pretrain", "--out", str(third), "--init", str(first), "--fine-stride", "2",
                 *common]) != 0
    assert "add --fine-head" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(second), "--init", str(tmp_path / "none.pt"),
                 *common]) != 0
    assert "is not a checkpoint file" in capsys.readouterr().err


@pytest.mark.skipif(not SHIPPED_PRIOR.is_file(), reason="no shipped prior in this checkout")
def test_the_shipped_prior_scores_its_recorded_f1_on_other_synthetic_faces():
    ckpt = load_checkpoint(SHIPPED_PRIOR)
    recorded = ckpt.meta["metrics"]
    assert min(recorded["per_class_f1"][n] for n in ("skin", "hair", "nose", "l_eye", "r_eye")) > 0.5
    fresh = score_prior(Predictor(ckpt.model, ckpt.config, ckpt.labels, ckpt.meta), count=6,
                        size=ckpt.config.input_size, first=1000)
    assert abs(fresh["mean_f1"] - recorded["mean_f1"]) < 0.08, (fresh["mean_f1"], recorded["mean_f1"])
