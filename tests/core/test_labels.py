"""The label set: canonical ids, flips, palette round trips, foreign orders."""
import numpy as np
import pytest

from core.labels import BISENET_ORDER, CELEBAMASK, FARL_ORDER, LabelSet


def test_canonical_ids_follow_g_mask_order():
    assert CELEBAMASK.num_classes == 19
    assert [CELEBAMASK.id(n) for n in ("background", "skin", "eye_g", "hair", "ear_r", "neck_l", "cloth")] == \
        [0, 1, 3, 13, 15, 16, 18]


def test_extras_are_appended_after_cloth():
    extended = LabelSet.celebamask(extras=True)
    assert extended.id("hand") == 19 and extended.id("mask") == 20
    assert extended.names[:19] == CELEBAMASK.names


def test_flip_mirrors_and_swaps_left_right_pairs():
    m = np.zeros((4, 6), np.uint8)
    m[1, 0] = CELEBAMASK.id("l_eye")
    m[2, 5] = CELEBAMASK.id("r_brow")
    m[3, 1] = CELEBAMASK.id("nose")
    f = CELEBAMASK.flip(m)
    assert f[1, 5] == CELEBAMASK.id("r_eye")
    assert f[2, 0] == CELEBAMASK.id("l_brow")
    assert f[3, 4] == CELEBAMASK.id("nose")
    assert np.array_equal(CELEBAMASK.flip(f), m)


def test_palette_colours_are_distinct_and_round_trip():
    ids = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(3, axis=0)
    assert len({tuple(c) for c in CELEBAMASK.palette}) == 19
    assert np.array_equal(CELEBAMASK.from_colors(CELEBAMASK.colorize(ids)), ids)


def test_from_colors_names_a_foreign_colour():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[1, 0] = (1, 2, 3)
    with pytest.raises(ValueError, match=r"\(1, 2, 3\) at \(x=0, y=1\)"):
        CELEBAMASK.from_colors(rgb)


def test_validate_rejects_out_of_range_and_wrong_shape():
    with pytest.raises(ValueError, match="out of range"):
        CELEBAMASK.validate(np.full((2, 2), 19, np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        CELEBAMASK.validate(np.zeros((2, 2, 1), np.uint8))


@pytest.mark.parametrize("order", [BISENET_ORDER, FARL_ORDER])
def test_foreign_orders_round_trip(order):
    assert sorted(order) == sorted(CELEBAMASK.names)
    to_ours = CELEBAMASK.remap_table(order)
    to_theirs = CELEBAMASK.remap_table(order, to_canonical=False)
    foreign_ids = np.arange(19, dtype=np.uint8)
    assert np.array_equal(to_theirs[to_ours[foreign_ids]], foreign_ids)
    assert CELEBAMASK.names[to_ours[order.index("hair")]] == "hair"


def test_bisenet_hair_is_17():
    assert CELEBAMASK.remap_table("bisenet")[17] == CELEBAMASK.id("hair")
