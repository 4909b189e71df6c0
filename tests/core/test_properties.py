"""Property tests (Hypothesis) of the label-map PNG codec and the CelebAMask-HQ merge.

Example counts are small (the suite runs on two cores) and there are no deadlines: a PNG
encode can take a few milliseconds more on a busy machine without being wrong.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from core.celebamask import merge_class_masks, split_label_map
from core.imageio import BadImageError, decode_label_png, encode_label_png
from core.labels import CELEBAMASK

NUM = CELEBAMASK.num_classes   # 19: ids 0..18
PROPS = settings(max_examples=80, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(1, 40)


@st.composite
def label_maps(draw, top: int = NUM) -> np.ndarray:
    """``H x W`` uint8 maps with ids below ``top``, 1..40 pixels a side."""
    shape = (draw(sides), draw(sides))
    return draw(arrays(np.uint8, shape, elements=st.integers(0, top - 1)))


# ---------------------------------------------------------------- label-map PNG codec
@PROPS
@given(label_maps())
def test_label_png_round_trip_is_exact(labels):
    png = encode_label_png(labels)
    back = decode_label_png(png, NUM, (labels.shape[1], labels.shape[0]))
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    with Image.open(io.BytesIO(png)) as img:   # what the format promises: single-channel PNG
        assert (img.format, img.mode) == ("PNG", "L")
    assert encode_label_png(back) == png       # the same map, the same bytes


@PROPS
@given(label_maps(top=256), st.integers(1, NUM))
def test_ids_at_or_above_num_classes_are_refused(labels, num_classes):
    png = encode_label_png(labels)
    top = int(labels.max())
    if top < num_classes:
        assert np.array_equal(decode_label_png(png, num_classes), labels)
    else:
        with pytest.raises(BadImageError, match=f"label id {top} out of range"):
            decode_label_png(png, num_classes)


@PROPS
@given(label_maps(), sides, sides)
def test_a_map_of_another_size_is_refused(labels, width, height):
    png = encode_label_png(labels)
    h, w = labels.shape
    if (width, height) == (w, h):
        assert decode_label_png(png, NUM, (width, height)).shape == (h, w)
    else:
        with pytest.raises(BadImageError, match=f"label map is {w}x{h}, expected {width}x{height}"):
            decode_label_png(png, NUM, (width, height))


@PROPS
@given(label_maps(), st.sampled_from(["RGB", "RGBA", "LA", "I", "I;16", "1", "F"]))
def test_other_modes_are_refused(labels, mode):
    buf = io.BytesIO()
    image = Image.fromarray(labels, mode="L").convert(mode)
    try:
        image.save(buf, format="PNG")
    except OSError:   # a mode PNG cannot hold (F): nothing to decode
        assume(False)
    with pytest.raises(BadImageError, match="single-channel"):
        decode_label_png(buf.getvalue(), NUM)


@PROPS
@given(label_maps(), st.data())
def test_a_cut_png_is_refused_or_still_exact_never_wrong(labels, data):
    """A PNG cut short is a :class:`BadImageError` — except when every pixel is still there
    (the cut fell after the last compressed pixel byte: in the checksums or the end marker);
    then it decodes to the same map. Never to a different one."""
    png = encode_label_png(labels)
    cut = data.draw(st.integers(0, len(png) - 1))
    try:
        back = decode_label_png(png[:cut], NUM)
    except BadImageError as err:
        assert str(err)
    else:
        assert np.array_equal(back, labels)


@PROPS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_are_refused_with_a_reason(data):
    try:
        labels = decode_label_png(data, NUM)
    except BadImageError as err:
        assert str(err)
    else:
        assert labels.ndim == 2 and labels.dtype == np.uint8 and labels.max(initial=0) < NUM


@PROPS
@given(st.one_of(arrays(np.uint8, st.tuples(sides, sides, st.integers(1, 3))),
                 arrays(st.sampled_from([np.int32, np.uint16, np.float32, np.int8]),
                        st.tuples(sides, sides), elements=st.integers(0, 18))))
def test_encode_takes_only_2d_uint8(array):
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_label_png(array)


# ---------------------------------------------------------------- CelebAMask-HQ merge
NAMES = [name for name in CELEBAMASK.names if name != "background"]


@st.composite
def part_masks(draw) -> tuple[int, dict[str, np.ndarray]]:
    """``(size, {part name: size x size mask})``: any subset of parts, any overlaps, masks as
    bool or 0/255 uint8 (both occur in the wild), possibly all empty."""
    size = draw(st.integers(1, 24))
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    masks = {}
    for name in names:
        mask = draw(arrays(np.bool_, (size, size)))
        masks[name] = mask if draw(st.booleans()) else mask.astype(np.uint8) * 255
    return size, masks


@PROPS
@given(part_masks())
def test_merge_keeps_the_highest_id_set_at_each_pixel(case):
    """g_mask.py's rule: parts paint in id order, a later id wins where they overlap; where
    no part is set, background."""
    size, masks = case
    out = merge_class_masks(masks, size=size)
    assert out.shape == (size, size) and out.dtype == np.uint8
    expected = np.zeros((size, size), np.uint8)
    for name, mask in masks.items():
        expected = np.maximum(expected, np.where(mask != 0, CELEBAMASK.id(name), 0))
    assert np.array_equal(out, expected)
    # only the given parts' ids appear (and background)
    assert set(np.unique(out)) <= {0} | {CELEBAMASK.id(n) for n in masks}
    # each part's pixels that no later (higher-id) part covers carry its id
    for name, mask in masks.items():
        later = [m != 0 for n, m in masks.items() if CELEBAMASK.id(n) > CELEBAMASK.id(name)]
        own = (mask != 0) & ~np.logical_or.reduce(later) if later else mask != 0
        assert (out[own] == CELEBAMASK.id(name)).all()


@PROPS
@given(st.integers(1, 24), st.lists(st.sampled_from(NAMES), unique=True))
def test_merge_of_empty_masks_is_all_background(size, names):
    masks = {name: np.zeros((size, size), np.uint8) for name in names}
    assert not merge_class_masks(masks, size=size).any()


@PROPS
@given(part_masks())
def test_merge_does_not_depend_on_the_order_the_parts_come_in(case):
    size, masks = case
    reordered = dict(reversed(list(masks.items())))
    assert np.array_equal(merge_class_masks(masks, size=size),
                          merge_class_masks(reordered, size=size))


@PROPS
@given(st.integers(1, 24).flatmap(
    lambda n: arrays(np.uint8, (n, n), elements=st.integers(0, NUM - 1))))
def test_split_then_merge_gives_the_map_back(labels):
    masks = split_label_map(labels)
    assert 0 not in {CELEBAMASK.id(n) for n in masks}
    assert np.array_equal(merge_class_masks(masks, size=labels.shape[0]), labels)


@PROPS
@given(part_masks(), st.integers(1, 24))
def test_a_mask_of_another_size_is_refused(case, other):
    size, masks = case
    assume(masks and other != size)
    name = next(iter(masks))
    bad = {**masks, name: np.zeros((other, other), np.uint8)}
    with pytest.raises(ValueError, match=f"expected {size}x{size}"):
        merge_class_masks(bad, size=size)


@PROPS
@given(st.text(min_size=1, max_size=12).filter(lambda s: s not in CELEBAMASK.names))
def test_an_unknown_part_name_is_refused(name):
    with pytest.raises(KeyError, match="unknown class"):
        merge_class_masks({name: np.zeros((4, 4), np.uint8)}, size=4)
