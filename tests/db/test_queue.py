"""Annotation queue: what needs work, in priority order, leased to one annotator at a time."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from db.annotation_queue import next_image, queue_counts, release, upcoming_images
from db.engine import session_scope
from db.models import RevisionState, Role, User
from db.revisions import save_revision
from tests.db.conftest import insert_image, label_png

T0 = datetime(2026, 1, 1, 12, 0, 0)


@pytest.fixture
def users(sessions):
    with session_scope(sessions) as s:
        people = [User(name=n, password_hash="scrypt$x", role=Role.annotator) for n in "abc"]
        s.add_all(people)
        s.flush()
        return [p.id for p in people]


def _images(sessions, priorities):
    with session_scope(sessions) as s:
        return [insert_image(s, k, priority=p).id for k, p in enumerate(priorities)]


def test_highest_priority_first_unscored_last_then_lowest_id(sessions, users):
    ids = _images(sessions, [None, 0.2, 0.9, None, 0.9])
    order = []
    with session_scope(sessions) as s:
        for _ in ids:
            order.append(next_image(s, users[0], exclude_ids=order, now=T0).id)
        assert next_image(s, users[0], exclude_ids=order, now=T0) is None
    assert order == [ids[2], ids[4], ids[1], ids[0], ids[3]]


def test_upcoming_images_are_the_next_ones_in_queue_order_and_nothing_is_leased(sessions, users):
    ids = _images(sessions, [None, 0.2, 0.9, None, 0.9])
    with session_scope(sessions) as s:
        held = next_image(s, users[1], now=T0).id               # ids[2], leased by another user
        assert upcoming_images(s, users[0], 3, now=T0) == [ids[4], ids[1], ids[0]]
        assert upcoming_images(s, users[0], 2, exclude_ids=[ids[4]], now=T0) == [ids[1], ids[0]]
        assert held == ids[2]
        served = [next_image(s, users[0], exclude_ids=[], now=T0).id]
        assert served == [ids[4]]                               # looking ahead leased nothing


def test_only_images_that_need_work_are_offered(sessions, users):
    ids = _images(sessions, [None] * 5)
    states = [None, RevisionState.draft, RevisionState.rejected, RevisionState.submitted,
              RevisionState.approved]
    with session_scope(sessions) as s:
        for image_id, state in zip(ids, states):
            if state is not None:
                save_revision(s, image_id, label_png(1), users[0], None, state=state)
        offered = []
        while (img := next_image(s, users[0], exclude_ids=offered, now=T0)) is not None:
            offered.append(img.id)
        assert offered == ids[:3]
        assert queue_counts(s, now=T0)["needs_work"] == 3
        assert (queue_counts(s, now=T0)["submitted"], queue_counts(s, now=T0)["approved"]) == (1, 1)


def test_two_users_never_get_the_same_image_until_the_lease_expires(sessions, users):
    a, b, c = users
    ids = _images(sessions, [0.5, 0.4])
    with session_scope(sessions) as s:
        first = next_image(s, a, lease_seconds=60, now=T0)
        assert (first.id, first.lease_user_id, first.lease_until) == (ids[0], a,
                                                                      T0 + timedelta(seconds=60))
    with session_scope(sessions) as s:
        assert next_image(s, b, lease_seconds=600, now=T0).id == ids[1]
        assert next_image(s, c, now=T0 + timedelta(seconds=30)) is None   # both leased
        assert queue_counts(s, now=T0)["available"] == 0
    with session_scope(sessions) as s:
        later = next_image(s, c, now=T0 + timedelta(seconds=61))            # a's lease expired
        assert later.id == ids[0] and later.lease_user_id == c
        assert next_image(s, a, now=T0 + timedelta(seconds=62)) is None


def test_a_user_gets_their_own_leased_image_back_and_holds_one_lease(sessions, users):
    a, b, _ = users
    ids = _images(sessions, [0.5, 0.4, 0.3])
    with session_scope(sessions) as s:
        assert next_image(s, a, now=T0).id == ids[0]
        assert next_image(s, a, now=T0).id == ids[0]                  # same image again
        assert next_image(s, a, exclude_ids=[ids[0]], now=T0).id == ids[1]   # skip
        assert next_image(s, b, now=T0).id == ids[0]                  # a's old lease was dropped


def test_release_frees_the_image_only_for_the_holder(sessions, users):
    a, b, _ = users
    ids = _images(sessions, [0.5])
    with session_scope(sessions) as s:
        next_image(s, a, now=T0)
        assert release(s, ids[0], b) is False
        assert next_image(s, b, now=T0) is None
        assert release(s, ids[0], a) is True
        assert next_image(s, b, now=T0).id == ids[0]


def test_concurrent_requests_from_two_sessions_lease_one_image_once(sessions, users):
    import threading

    a, b, _ = users
    _images(sessions, [0.5])
    barrier = threading.Barrier(2)
    got: dict[int, int | None] = {}
    errors: list[BaseException] = []

    def ask(user_id: int) -> None:
        try:
            with session_scope(sessions) as s:
                barrier.wait(timeout=10)
                image = next_image(s, user_id, now=T0)
                got[user_id] = image.id if image is not None else None
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=ask, args=(u,)) for u in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and sorted(got.values(), key=str) == sorted([1, None], key=str)
