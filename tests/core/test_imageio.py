"""Safe decoding: every bad input gets a reason; label PNGs round-trip exactly."""
import io
import os

import numpy as np
import pytest
from PIL import Image

from core.imageio import (BadImageError, decode_image, decode_label_png, encode_label_png,
                          image_size, write_atomic)


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(w=40, h=30) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 100, 50)).save(buf, format="JPEG")
    return buf.getvalue()


def test_decode_good_jpeg():
    arr = decode_image(_jpeg())
    assert arr.shape == (30, 40, 3) and arr.dtype == np.uint8


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"hello, I am text", "not an image"),
    (_jpeg()[:200], "truncated"),
])
def test_bad_bytes_get_a_reason(data, reason):
    with pytest.raises(BadImageError, match=reason):
        decode_image(data)


def test_decompression_bomb_is_refused_without_decoding():
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, format="PNG")  # ~50 KB on disk, 400 Mpx
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(BadImageError, match="too large|bomb"):
        image_size(buf.getvalue())


def test_label_png_round_trip_is_exact():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 19, size=(37, 53), dtype=np.uint8)
    assert np.array_equal(decode_label_png(encode_label_png(m), 19), m)


def test_label_png_checks_size_range_and_mode():
    m = np.zeros((8, 8), np.uint8)
    with pytest.raises(BadImageError, match="expected 16x8"):
        decode_label_png(encode_label_png(m), 19, size=(16, 8))
    m[0, 0] = 25
    with pytest.raises(BadImageError, match="out of range"):
        decode_label_png(encode_label_png(m), 19)
    with pytest.raises(BadImageError, match="single-channel"):
        decode_label_png(_png(np.zeros((4, 4, 3), np.uint8)), 19)
    with pytest.raises(BadImageError, match="must be PNG"):
        decode_label_png(_jpeg(), 19)


def test_write_atomic_leaves_no_temp_files(tmp_path):
    os.umask(0o022)
    target = tmp_path / "sub" / "x.bin"
    write_atomic(target, b"abc")
    write_atomic(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert [p.name for p in target.parent.iterdir()] == ["x.bin"]
    assert target.stat().st_mode & 0o044 == 0o044  # readable by group and others (umask 022)
