"""db/images.py: content-addressed image files, export ids, status from the latest revision."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from core.errors import FacetError
from core.imageio import BadImageError, encode_label_png
from db.engine import session_scope
from db.images import add_image, default_split, get_image, image_file, list_images, read_image
from db.models import Image, Origin, Revision, RevisionState
from tests.db.io_fixtures import photo_bytes, png_bytes


def test_add_image_stores_original_bytes_under_its_hash(settings, sessions):
    data = photo_bytes(1, size=(48, 40))
    with session_scope(sessions) as s:
        res = add_image(s, settings, data, "faces/a.jpg")
        assert res.created
        image_id = res.image.id
    with session_scope(sessions) as s:
        img = get_image(s, image_id)
        assert (img.k, img.width, img.height) == (0, 48, 40)
        assert (img.label_width, img.label_height) == (48, 40)
        assert img.source_name == "faces/a.jpg" and img.source_k is None
        assert img.file_path == f"images/{img.sha256}.jpg"
        assert image_file(settings, img).read_bytes() == data
        assert img.split == default_split(img.sha256)


def test_duplicate_bytes_return_the_first_row_and_write_nothing(settings, sessions):
    data = photo_bytes(2)
    with session_scope(sessions) as s:
        first = add_image(s, settings, data, "a.jpg").image.id
    with session_scope(sessions) as s:
        again = add_image(s, settings, data, "copy-of-a.jpg")
        assert not again.created and again.image.id == first
        assert s.scalar(select(func.count(Image.id))) == 1
    assert len(list(settings.images_dir.iterdir())) == 1


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"hello, not a picture", "not an image"),
    (photo_bytes(3, size=(200, 160))[:600], "truncated"),
])
def test_bad_bytes_raise_and_change_nothing(settings, sessions, data, reason):
    with session_scope(sessions) as s:
        with pytest.raises(BadImageError, match=reason):
            add_image(s, settings, data, "bad.jpg")
        assert s.scalar(select(func.count(Image.id))) == 0
    assert not settings.images_dir.exists() or not any(settings.images_dir.iterdir())


def test_gif_is_refused(settings, sessions):
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buf, format="GIF")
    with session_scope(sessions) as s:
        with pytest.raises(BadImageError, match="unsupported image format"):
            add_image(s, settings, buf.getvalue(), "x.gif")


def test_source_k_kept_when_free_else_fresh_id(settings, sessions):
    with session_scope(sessions) as s:
        a = add_image(s, settings, photo_bytes(10), "a", source_k=7, label_size=(512, 512)).image
        b = add_image(s, settings, photo_bytes(11), "b", source_k=7).image
        c = add_image(s, settings, photo_bytes(12), "c").image
        assert (a.k, a.source_k, a.label_width, a.label_height) == (7, 7, 512, 512)
        assert (b.k, b.source_k) == (8, 7)
        assert c.k == 9


def _rev(image_id: int, number: int | None, state: RevisionState) -> Revision:
    label = encode_label_png(np.zeros((4, 4), dtype=np.uint8))
    return Revision(image_id=image_id, revision=number, state=state, origin=Origin.human,
                    label_png=label)


def test_status_comes_from_the_latest_main_line_revision(settings, sessions):
    with session_scope(sessions) as s:
        ids = [add_image(s, settings, photo_bytes(20 + i), f"{i}.jpg").image.id for i in range(4)]
        s.add_all([
            _rev(ids[1], 1, RevisionState.draft), _rev(ids[1], 2, RevisionState.submitted),
            _rev(ids[2], 1, RevisionState.approved),
            _rev(ids[2], None, RevisionState.draft),   # lost a conflict: not on the main line
            _rev(ids[3], 1, RevisionState.rejected),
        ])
    with session_scope(sessions) as s:
        got = {item.image.id: (item.status, item.revision) for item in list_images(s)}
        assert got == {ids[0]: ("unlabeled", None), ids[1]: ("submitted", 2),
                       ids[2]: ("approved", 1), ids[3]: ("rejected", 1)}
        assert [i.image.id for i in list_images(s, status="approved")] == [ids[2]]
        assert [i.image.id for i in list_images(s, status="unlabeled")] == [ids[0]]
        with pytest.raises(FacetError, match="unknown status"):
            list_images(s, status="done")


def test_read_image_gives_rgb_pixels(settings, sessions):
    pixels = np.random.default_rng(5).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    with session_scope(sessions) as s:
        img = add_image(s, settings, png_bytes(pixels), "p.png").image
        assert img.file_path.endswith(".png")
        out = read_image(settings, img)
    assert out.dtype == np.uint8 and out.shape == (30, 20, 3)
    assert np.array_equal(out, pixels)


@pytest.mark.parametrize("same_bytes", [True, False], ids=["same content", "same next k"])
def test_two_writers_adding_at_once_never_fail_and_lose_nothing(settings, sessions, monkeypatch,
                                                                same_bytes):
    """Both writers look for the content and pick ``k`` before either inserts (held at a
    barrier on real SQLite connections): the same bytes give one image and a duplicate
    answer, different bytes two images with different ``k`` — never an IntegrityError."""
    import threading

    import db.images as images

    barrier = threading.Barrier(2)
    real_size = images.image_size

    def size_after_both_looked(data: bytes):
        barrier.wait(timeout=10)   # both have checked the hash and computed next_k by now
        return real_size(data)

    monkeypatch.setattr(images, "image_size", size_after_both_looked)
    payloads = [photo_bytes(1), photo_bytes(1 if same_bytes else 2)]
    results, errors = {}, []

    def writer(i: int) -> None:
        try:
            with session_scope(sessions) as s:
                r = add_image(s, settings, payloads[i], f"w{i}.jpg")
                results[i] = (r.created, r.image.id, r.image.k)
        except BaseException as err:  # reported below, never swallowed
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with session_scope(sessions) as s:
        rows = s.scalars(select(Image).order_by(Image.id)).all()
        ks = sorted(r.k for r in rows)
    if same_bytes:
        assert sorted(c for c, _, _ in results.values()) == [False, True]
        assert len(rows) == 1 and {i for _, i, _ in results.values()} == {rows[0].id}
    else:
        assert [c for c, _, _ in results.values()] == [True, True]
        assert len(rows) == 2 and len(set(ks)) == 2
