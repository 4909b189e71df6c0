"""Review: only a submitted newest revision can be approved or rejected, by a reviewer."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from db.engine import session_scope
from db.models import Revision, RevisionState, Role, User
from db.review import approve, list_submitted, reject, submit
from db.revisions import history, latest_revision, save_revision
from tests.db.conftest import insert_image, label_png


@pytest.fixture
def ids(sessions):
    with session_scope(sessions) as s:
        images = [insert_image(s, k) for k in range(3)]
        people = [User(name=n, password_hash="scrypt$x", role=r)
                  for n, r in (("ann", Role.annotator), ("rev", Role.reviewer))]
        s.add_all(people)
        s.flush()
        return [i.id for i in images], people[0].id, people[1].id


def test_submit_then_approve_appends_revisions_with_the_same_pixels(sessions, ids):
    (img, *_), ann, rev = ids
    with session_scope(sessions) as s:
        save_revision(s, img, label_png(4), ann, None)
        submit(s, img, ann)
    with session_scope(sessions) as s:
        assert [r.image_id for r in list_submitted(s)] == [img]
        approved = approve(s, img, rev, "clean edges")
        assert (approved.revision, approved.state, approved.comment) == (3, RevisionState.approved,
                                                                         "clean edges")
    with session_scope(sessions) as s:
        rows = history(s, img)
        assert [(r.revision, r.state, r.author.name) for r in rows] == [
            (1, RevisionState.draft, "ann"), (2, RevisionState.submitted, "ann"),
            (3, RevisionState.approved, "rev")]
        assert {r.label_png for r in rows} == {label_png(4)}
        assert list_submitted(s) == []


def test_reject_keeps_the_comment_and_the_image_can_be_resubmitted(sessions, ids):
    (img, *_), ann, rev = ids
    with session_scope(sessions) as s:
        save_revision(s, img, label_png(1), ann, None, state=RevisionState.submitted)
        rejected = reject(s, img, rev, "left ear missing")
        assert rejected.state == RevisionState.rejected and rejected.comment == "left ear missing"
        save_revision(s, img, label_png(9), ann, rejected.revision)
        submit(s, img, ann)
        assert latest_revision(s, img).state == RevisionState.submitted


@pytest.mark.parametrize("state", [RevisionState.draft, RevisionState.approved,
                                   RevisionState.rejected])
def test_only_a_submitted_revision_can_be_reviewed(sessions, ids, state):
    (img, *_), ann, rev = ids
    with session_scope(sessions) as s:
        save_revision(s, img, label_png(1), ann, None, state=state)
    for decide in (approve, reject):
        with session_scope(sessions) as s:
            with pytest.raises(FacetError, match=f"is {state.value}; only a submitted"):
                decide(s, img, rev, None)
    with session_scope(sessions) as s:
        assert len(history(s, img)) == 1


def test_reviewing_needs_a_revision_and_a_reviewer(sessions, ids):
    (img, other, _), ann, rev = ids
    with session_scope(sessions) as s:
        with pytest.raises(FacetError, match="has no annotation yet"):
            approve(s, other, rev)
        save_revision(s, img, label_png(1), ann, None, state=RevisionState.submitted)
        with pytest.raises(FacetError, match="has role annotator; this needs reviewer or higher"):
            approve(s, img, ann)
        with pytest.raises(FacetError, match="only a draft or rejected"):
            submit(s, img, ann)
    with session_scope(sessions) as s:
        assert s.query(Revision).count() == 1


def test_list_submitted_ignores_images_whose_newest_revision_moved_on(sessions, ids):
    (a, b, c), ann, rev = ids
    with session_scope(sessions) as s:
        for img in (a, b, c):
            save_revision(s, img, label_png(1), ann, None, state=RevisionState.submitted)
        approve(s, a, rev)
        save_revision(s, c, label_png(2), ann, 1)  # back to draft
        assert [r.image_id for r in list_submitted(s)] == [b]
