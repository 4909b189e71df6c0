"""The predictor the app uses: any image size in, label map and confidence out."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import FacetError
from core.labels import CELEBAMASK
from model.checkpoint import save_checkpoint
from model.evaluate import evaluate
from model.inference import Predictor
from model.metrics import ConfusionMatrix
from model.net import ParserConfig, build_face_parser
from tests.model.faces import face_samples


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    torch.manual_seed(0)
    config = ParserConfig.small(input_size=64)
    model = build_face_parser(config)
    with torch.no_grad():
        model.train()(torch.rand(4, 3, 64, 64))
    path = tmp_path_factory.mktemp("p") / "p.pt"
    save_checkpoint(path, model.eval(), config, CELEBAMASK, {"version": 7})
    return Predictor.load(path)


def test_predict_any_size(predictor):
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    label, conf = predictor.predict(image)
    assert label.shape == (50, 70) and label.dtype == np.uint8
    assert conf.shape == (50, 70) and conf.dtype == np.float32
    assert (conf > 0).all() and (conf <= 1.0 + 1e-6).all()
    assert label.max() < CELEBAMASK.num_classes
    assert predictor.meta == {"version": 7} and predictor.labels == CELEBAMASK


def test_batch_equals_single_and_uncertainty(predictor):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
              rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)]
    batch = predictor.predict_batch(images)
    for (bl, bc), im in zip(batch, images):
        sl, sc = predictor.predict(im)
        assert np.array_equal(bl, sl)
        np.testing.assert_allclose(bc, sc, atol=1e-5)
    label, conf, u = predictor.predict_with_uncertainty(images[0])
    assert np.array_equal(label, batch[0][0])
    assert 0.0 <= u <= 1.0 and u == pytest.approx(predictor.uncertainty(images[0]))


def test_uncertainty_ranks_confident_images_lower(predictor):
    probs_sure = torch.zeros(19, 8, 8)
    probs_sure[1] = 1.0
    probs_unsure = torch.full((19, 8, 8), 1 / 19)
    assert predictor.uncertainty_of(probs_sure) < 0.01
    assert predictor.uncertainty_of(probs_unsure) == pytest.approx(1.0, abs=1e-4)
    # same entropy, but where a thin class is likely: counts more
    half = torch.zeros(19, 8, 8)
    half[1, :, :4], half[2, :, :4] = 0.5, 0.5                 # left: skin / nose
    half[1, :, 4:] = 0.9
    half[15, :, 4:] = 0.1                                    # right: confident, maybe earring
    weighted = predictor.uncertainty_of(half)
    predictor.thin_weight, plain = 0.0, None
    try:
        plain = predictor.uncertainty_of(half)
    finally:
        predictor.thin_weight = 4.0
    assert weighted != pytest.approx(plain)


def test_bad_input_is_a_clear_error(predictor):
    with pytest.raises(FacetError, match="H x W x 3 uint8"):
        predictor.predict(np.zeros((8, 8), np.uint8))
    with pytest.raises(FacetError):
        predictor.predict(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(FacetError, match="not found"):
        Predictor.load("/nonexistent/p.pt")


def test_evaluate_uses_label_resolution_and_one_matrix(predictor):
    samples = face_samples(3, 48, seed=5)
    # image at a different size than its label map: compared at the label's size
    samples[0] = (np.repeat(np.repeat(samples[0][0], 2, 0), 2, 1), samples[0][1])
    scores = evaluate(predictor, samples, batch_size=2)
    cm = ConfusionMatrix()
    for image, gt in samples:
        cm.update(predictor.predict(image, size=gt.shape)[0], gt)
    assert scores["n_images"] == 3
    assert scores["mean_f1"] == pytest.approx(cm.mean_f1())
    for name, f1 in cm.per_class_f1().items():
        assert scores["per_class_f1"][name] == (None if f1 is None else pytest.approx(f1))


def test_large_outputs_are_upsampled_in_class_groups_with_the_same_result(predictor, monkeypatch):
    import model.inference as inference

    image = np.random.default_rng(3).integers(0, 255, (90, 120, 3), dtype=np.uint8)
    label, conf = predictor.predict(image)
    monkeypatch.setattr(inference, "LARGE_OUTPUT_PIXELS", 90 * 120 * 4)   # 4 classes at a time
    label_g, conf_g = predictor.predict(image)
    assert np.array_equal(label, label_g)
    np.testing.assert_array_equal(conf, conf_g)


def test_a_predictor_leaves_the_process_thread_count_alone(predictor):
    from model.devices import set_torch_threads

    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        Predictor(predictor.model, predictor.config, predictor.labels, device="cpu")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_flip_averaged_prediction_mirrors_with_the_image(predictor):
    """Averaging an image with its mirror image makes the prediction of the mirrored face the
    mirror of the prediction, left and right classes swapped (the raw one is not)."""
    image = np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    mirror = np.ascontiguousarray(image[:, ::-1])
    swap = torch.from_numpy(CELEBAMASK.flip_table.astype(np.int64))

    def mirrored_probs(p: Predictor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = p.probabilities_small([image, mirror])
        return probs[1], probs[0].flip(-1)[swap]

    a, b = mirrored_probs(predictor)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    raw = Predictor(predictor.model, predictor.config, predictor.labels, predictor.meta,
                    flip_average=False)
    a, b = mirrored_probs(raw)
    assert (a - b).abs().max() > 1e-3
    both = raw.probabilities_small([image, mirror])
    expected = (both[0] + both[1].flip(-1)[swap]) / 2
    torch.testing.assert_close(predictor.probabilities_small([image])[0], expected,
                               atol=1e-5, rtol=0)
