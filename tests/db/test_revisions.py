"""Revisions: append-only main line, conflicts kept as drafts, race-free numbering, undo."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from sqlalchemy import select

from core.errors import FacetError
from core.imageio import BadImageError, decode_label_png, encode_label_png
from db.engine import session_scope
from db.models import Origin, Revision, RevisionState, Role, User
from db.revisions import history, latest_revision, restore_revision, save_revision
from tests.db.conftest import insert_image, label_png


@pytest.fixture
def image_and_users(sessions):
    with session_scope(sessions) as s:
        image = insert_image(s, 0)
        users = [User(name=n, password_hash="scrypt$x", role=Role.annotator) for n in ("a", "b")]
        s.add_all(users)
        s.flush()
        return image.id, users[0].id, users[1].id


def _rows(sessions, image_id):
    with session_scope(sessions) as s:
        return [(r.id, r.revision, r.parent_id, r.state, r.label_png)
                for r in s.scalars(select(Revision).where(Revision.image_id == image_id)
                                   .order_by(Revision.id))]


def test_saves_append_numbered_revisions_with_parents_and_keep_old_rows(sessions, image_and_users):
    image_id, a, _ = image_and_users
    with session_scope(sessions) as s:
        first = save_revision(s, image_id, label_png(1), a, None)
        assert (first.conflict, first.current_revision, first.revision.revision) == (False, 1, 1)
    before = _rows(sessions, image_id)
    with session_scope(sessions) as s:
        second = save_revision(s, image_id, label_png(2), a, 1, state=RevisionState.submitted)
        assert (second.conflict, second.current_revision) == (False, 2)
    rows = _rows(sessions, image_id)
    assert rows[:1] == before                      # the first row is untouched
    assert rows[1][1:4] == (2, rows[0][0], RevisionState.submitted)
    with session_scope(sessions) as s:
        latest = latest_revision(s, image_id)
        assert latest.revision == 2
        assert (decode_label_png(latest.label_png, 19) == 2).all()


def test_a_stale_base_is_stored_as_a_conflict_draft_and_the_main_line_is_unchanged(
        sessions, image_and_users):
    image_id, a, b = image_and_users
    with session_scope(sessions) as s:
        save_revision(s, image_id, label_png(1), a, None)
        save_revision(s, image_id, label_png(2), a, 1)
    with session_scope(sessions) as s:  # b started from revision 1, a has saved 2 since
        stale = save_revision(s, image_id, label_png(5), b, 1, state=RevisionState.submitted)
        assert stale.conflict and stale.current_revision == 2
        assert stale.revision.revision is None and stale.revision.state == RevisionState.draft
    with session_scope(sessions) as s:
        assert latest_revision(s, image_id).revision == 2
        assert (decode_label_png(latest_revision(s, image_id).label_png, 19) == 2).all()
        rows = history(s, image_id)
        kept = rows[-1]
        assert (kept.revision, kept.author.name) == (None, "b")
        assert kept.parent_id == rows[0].id       # the revision b started from
        assert (decode_label_png(kept.label_png, 19) == 5).all()   # b's work is not lost


def test_saving_with_no_base_over_an_existing_revision_is_a_conflict(sessions, image_and_users):
    image_id, a, b = image_and_users
    with session_scope(sessions) as s:
        save_revision(s, image_id, label_png(1), a, None)
        result = save_revision(s, image_id, label_png(3), b, None)
        assert result.conflict and result.current_revision == 1 and result.revision.parent_id is None


def test_repeating_a_save_returns_its_revision_instead_of_a_conflict(sessions, image_and_users):
    image_id, a, b = image_and_users
    with session_scope(sessions) as s:
        save_revision(s, image_id, label_png(1), a, None)
        first = save_revision(s, image_id, label_png(2), a, 1, state=RevisionState.submitted)
    with session_scope(sessions) as s:   # the same save again: a double click, a retry
        again = save_revision(s, image_id, label_png(2), a, 1, state=RevisionState.submitted)
        assert (again.conflict, again.current_revision, again.revision.revision) == (False, 2, 2)
        assert again.revision.id == first.revision.id
    assert [r[1] for r in _rows(sessions, image_id)] == [1, 2]   # nothing stored twice
    with session_scope(sessions) as s:   # the second click came after the first one's answer
        late = save_revision(s, image_id, label_png(2), a, 2, state=RevisionState.submitted)
        assert (late.conflict, late.revision.id) == (False, first.revision.id)
    assert [r[1] for r in _rows(sessions, image_id)] == [1, 2]
    with session_scope(sessions) as s:   # anything else from that stale base still conflicts
        assert save_revision(s, image_id, label_png(3), a, 1,
                             state=RevisionState.submitted).conflict          # other pixels
        assert save_revision(s, image_id, label_png(2), b, 1,
                             state=RevisionState.submitted).conflict          # another author
        assert save_revision(s, image_id, label_png(2), a, 1).conflict       # a draft this time


def test_two_concurrent_savers_from_one_base_exactly_one_wins(sessions, image_and_users):
    image_id, a, b = image_and_users
    with session_scope(sessions) as s:
        save_revision(s, image_id, label_png(1), a, None)
    barrier = threading.Barrier(2)
    results: dict[int, tuple[bool, int | None]] = {}
    errors: list[BaseException] = []

    def saver(user_id: int, value: int) -> None:
        try:
            with session_scope(sessions) as s:
                barrier.wait(timeout=10)
                r = save_revision(s, image_id, label_png(value), user_id, 1)
                results[user_id] = (r.conflict, r.revision.revision)
        except BaseException as err:  # reported below, never swallowed
            errors.append(err)

    threads = [threading.Thread(target=saver, args=(u, v)) for u, v in ((a, 2), (b, 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(results.values(), key=str) == sorted([(False, 2), (True, None)], key=str)
    with session_scope(sessions) as s:
        numbers = s.scalars(select(Revision.revision).where(Revision.image_id == image_id)
                            .order_by(Revision.id)).all()
    assert sorted(n for n in numbers if n is not None) == [1, 2] and numbers.count(None) == 1


@pytest.mark.parametrize("data, reason", [
    (encode_label_png(np.zeros((4, 8), np.uint8)), "expected 8x8"),
    (encode_label_png(np.full((8, 8), 19, np.uint8)), "out of range"),
    (b"not a png", "not an image"),
    (b"", "empty"),
])
def test_a_bad_label_png_is_refused_and_nothing_is_stored(sessions, image_and_users, data, reason):
    image_id, a, _ = image_and_users
    with session_scope(sessions) as s:
        with pytest.raises(BadImageError, match=reason):
            save_revision(s, image_id, data, a, None)
    assert _rows(sessions, image_id) == []


def test_unknown_image_and_future_base_are_user_errors(sessions, image_and_users):
    image_id, a, _ = image_and_users
    with session_scope(sessions) as s:
        with pytest.raises(FacetError, match="no image with id 999"):
            save_revision(s, 999, label_png(1), a, None)
        with pytest.raises(FacetError, match="has no revision 4"):
            save_revision(s, image_id, label_png(1), a, 4)
    assert _rows(sessions, image_id) == []


def test_restore_appends_a_copy_of_an_earlier_revision(sessions, image_and_users):
    image_id, a, _ = image_and_users
    with session_scope(sessions) as s:
        save_revision(s, image_id, label_png(1), a, None, origin=Origin.model)
        save_revision(s, image_id, label_png(2), a, 1)
        save_revision(s, image_id, label_png(3), a, 2)
    with session_scope(sessions) as s:
        result = restore_revision(s, image_id, 1, a, 3)
        assert not result.conflict and result.current_revision == 4
    with session_scope(sessions) as s:
        latest = latest_revision(s, image_id)
        assert latest.label_png == label_png(1) and latest.origin == Origin.model
        assert [r.revision for r in history(s, image_id)] == [1, 2, 3, 4]
        with pytest.raises(FacetError, match="has no revision 9"):
            restore_revision(s, image_id, 9, a, 4)
        stale = restore_revision(s, image_id, 2, a, 3)
        assert stale.conflict and latest_revision(s, image_id).revision == 4


def test_a_palette_png_is_stored_as_mode_l_with_the_same_ids(sessions, image_and_users):
    import io

    from PIL import Image as PILImage

    image_id, a, _ = image_and_users
    ids = np.arange(64, dtype=np.uint8).reshape(8, 8) % 19
    buf = io.BytesIO()
    PILImage.fromarray(ids, mode="L").convert("P").save(buf, format="PNG")
    with session_scope(sessions) as s:
        save_revision(s, image_id, buf.getvalue(), a, None)
    with session_scope(sessions) as s:
        stored = latest_revision(s, image_id).label_png
    assert PILImage.open(io.BytesIO(stored)).mode == "L"
    assert np.array_equal(decode_label_png(stored, 19), ids)
    assert stored == encode_label_png(ids)
