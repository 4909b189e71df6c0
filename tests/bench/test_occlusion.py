"""``bench/occlusion.py``: which faces count as occluded, and what counts as inventing a face
part behind a hand or a face mask."""
from __future__ import annotations

import numpy as np
import pytest

from bench.occlusion import WITH_EXTRAS, groups_of, score_occlusion, truth_for
from core.labels import CELEBAMASK, LabelSet
from model.prior import held_out_faces


class MapPredictor:
    """Answers each face with a label map chosen by the test (the edge: no weights needed)."""

    def __init__(self, labels: LabelSet, answers: dict[bytes, np.ndarray]) -> None:
        self.labels = labels
        self.answers = answers

    def predict(self, image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        pred = self.answers[image.tobytes()]
        assert pred.shape == tuple(size)
        return pred, np.ones(pred.shape, np.float32)


@pytest.fixture(scope="module")
def wild_faces() -> list[tuple[np.ndarray, np.ndarray]]:
    return held_out_faces(12, 96, "wild", WITH_EXTRAS, first=200)


def test_wild_faces_have_each_group(wild_faces) -> None:
    groups = {g for _, label in wild_faces for g in groups_of(label)}
    assert groups == {"hand", "mask", "clear"}


def test_truth_drops_extras_for_a_19_class_model(wild_faces) -> None:
    _, label = next(f for f in wild_faces if groups_of(f[1]) != ["clear"])
    base = truth_for(label, CELEBAMASK)
    assert base.max() < CELEBAMASK.num_classes
    assert (base[label >= CELEBAMASK.num_classes] == 0).all()
    assert (truth_for(label, WITH_EXTRAS) == label).all()


def test_right_answers_invent_nothing(wild_faces) -> None:
    answers = {im.tobytes(): truth_for(label, CELEBAMASK) for im, label in wild_faces}
    result = score_occlusion(MapPredictor(CELEBAMASK, answers), wild_faces)
    for g in ("hand", "mask"):
        assert result[g]["hallucinated"] == 0.0
        assert result[g]["skin"] == pytest.approx(1.0)
    assert result["clear"]["hallucinated"] is None  # no occluder pixels at all
    assert sum(r["faces"] for r in result.values()) >= len(wild_faces)


def test_skin_painted_over_the_occluder_is_counted(wild_faces) -> None:
    skin = CELEBAMASK.id("skin")
    answers = {}
    for im, label in wild_faces:
        pred = truth_for(label, CELEBAMASK)
        answers[im.tobytes()] = np.where(label >= CELEBAMASK.num_classes, skin, pred).astype(np.uint8)
    result = score_occlusion(MapPredictor(CELEBAMASK, answers), wild_faces)
    assert result["hand"]["hallucinated"] == 1.0
    assert result["hand"]["skin"] < 1.0
    assert result["clear"]["skin"] == pytest.approx(1.0)


def test_a_model_with_the_extra_classes_is_scored_on_them(wild_faces) -> None:
    answers = {im.tobytes(): label for im, label in wild_faces}
    result = score_occlusion(MapPredictor(WITH_EXTRAS, answers), wild_faces)
    assert result["hand"]["hand"] == pytest.approx(1.0)
    assert result["mask"]["mask"] == pytest.approx(1.0)
    assert result["hand"]["hallucinated"] == 0.0
