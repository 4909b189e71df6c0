"""``bench/thin_parts.py``: what each variant token changes."""
from __future__ import annotations

import pytest

from bench.thin_parts import parse_variant
from core.labels import CELEBAMASK
from model.augment import AugmentConfig
from model.losses import LossConfig


def test_base_is_the_recipe_defaults():
    v = parse_variant("base")
    assert v.loss == LossConfig() and v.augment == AugmentConfig()
    assert v.boost == 0.0 and v.arch == {} and v.labels == CELEBAMASK


def test_nowarp_and_noblur_touch_only_their_transforms():
    v = parse_variant("fine1+boost0.8+nowarp+noblur")
    assert (v.augment.scale, v.augment.rotation_deg, v.augment.shift) == ((1.0, 1.0), 0.0, 0.0)
    assert v.augment.blur_prob == 0.0
    default = AugmentConfig()
    assert (v.augment.flip_prob, v.augment.brightness) == (default.flip_prob, default.brightness)
    assert v.boost == 0.8 and v.arch == {"fine_head": True, "fine_stride": 1}
    assert parse_variant("nowarp").augment.blur_prob == default.blur_prob


def test_extras_adds_the_occluder_classes():
    v = parse_variant("extras")
    assert v.labels.names[-2:] == ("hand", "mask")
    assert v.labels.num_classes == CELEBAMASK.num_classes + 2


@pytest.mark.parametrize("name", ["fine1+bogus", "ear0"])
def test_bad_tokens_are_refused(name):
    with pytest.raises(SystemExit):
        parse_variant(name)
