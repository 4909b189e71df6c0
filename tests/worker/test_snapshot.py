"""worker/snapshot.py: what a run trains on, the fixed validation split, counting new labels."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from db.engine import session_scope
from db.models import RevisionState
from db.review import approve
from tests.worker.conftest import add_face, add_faces, face, save_label
from worker.snapshot import (count_labels_since, labelled_rows, needs_work_ids, split_labels,
                             take_snapshot)


def test_labels_are_newest_submitted_or_approved_revisions_outside_test(settings, sessions):
    with session_scope(sessions) as s:
        sub = add_face(s, settings, 1, state=RevisionState.submitted)
        appr = add_face(s, settings, 2, state=RevisionState.approved)
        draft = add_face(s, settings, 3, state=RevisionState.draft)
        rejected = add_face(s, settings, 4, state=RevisionState.submitted)
        save_label(s, rejected, face(4)[1], RevisionState.rejected)
        edited = add_face(s, settings, 5, state=RevisionState.submitted)
        save_label(s, edited, face(5)[1], RevisionState.draft)  # being reworked: not a label now
        add_face(s, settings, 6, split="test", state=RevisionState.approved)  # never a label
        unl_test = add_face(s, settings, 7, split="test")
        none = add_face(s, settings, 8)
    with session_scope(sessions) as s:
        assert [img.id for img, _ in labelled_rows(s)] == [sub, appr]
        assert needs_work_ids(s) == [draft, rejected, edited, unl_test, none]
        assert needs_work_ids(s, include_test=False) == [draft, rejected, edited, none]


def test_validation_is_the_val_split_when_two_are_labelled(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "val", 3: "train", 4: "val", 5: "val"},
                    unlabelled=[6, 7])
    with session_scope(sessions) as s:
        snap = take_snapshot(s)
    assert [x.image_id for x in snap.val] == [ids[2], ids[4], ids[5]]
    assert [x.image_id for x in snap.train] == [ids[1], ids[3]]
    assert snap.unlabeled == (ids[6], ids[7])
    with session_scope(sessions) as s:  # fixed across runs: more labels do not move it
        add_face(s, settings, 8, state=RevisionState.submitted)
        again = take_snapshot(s)
    assert again.val == snap.val and len(again.train) == 3


def test_too_few_val_images_are_topped_up_by_smallest_hash(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "train", 3: "train", 4: "val"}, [])
    with session_scope(sessions) as s:
        rows = labelled_rows(s)
        by_hash = sorted((img.sha256, img.id) for img, _ in rows if img.split == "train")
        train, val = split_labels(rows)
    assert {x.image_id for x in val} == {ids[4], by_hash[0][1]}
    assert len(train) == 2 and not {x.image_id for x in train} & {x.image_id for x in val}
    with session_scope(sessions) as s:  # deterministic
        assert split_labels(labelled_rows(s)) == (train, val)


def test_all_labels_in_val_still_leave_a_training_image(settings, sessions):
    add_faces(sessions, settings, {1: "val", 2: "val", 3: "val"}, [])
    with session_scope(sessions) as s:
        snap = take_snapshot(s)
    assert (len(snap.train), len(snap.val)) == (1, 2)


def test_fewer_than_three_labels_is_a_clear_error(settings, sessions):
    add_faces(sessions, settings, {1: "train", 2: "val"}, [3])
    with session_scope(sessions) as s, pytest.raises(FacetError, match="at least 3"):
        take_snapshot(s)


def test_new_labels_are_counted_after_a_marker_and_approvals_do_not_count_twice(settings, sessions):
    ids = add_faces(sessions, settings, {1: "train", 2: "train", 3: "val"}, [4, 5])
    with session_scope(sessions) as s:
        marker = take_snapshot(s).max_revision_id
        assert count_labels_since(s, 0) == 3 and count_labels_since(s, marker) == 0
        approve(s, ids[1], None)                      # same pixels, now approved: not new
        assert count_labels_since(s, marker) == 0
        save_label(s, ids[4], face(4)[1])             # a new label
        changed = face(2)[1].copy()
        changed[:8] = 13
        save_label(s, ids[2], changed)                # a corrected label: new information
        save_label(s, ids[5], face(5)[1], RevisionState.draft)  # a draft: not a label
        assert count_labels_since(s, marker) == 2


def test_only_approved_labels_train_when_asked(settings, sessions):
    from worker.snapshot import APPROVED_ONLY, max_label_revision_id

    ids = add_faces(sessions, settings, {1: "train", 2: "val", 3: "train", 4: "val"}, [5])
    with session_scope(sessions) as s:
        for seed in (1, 2, 3):
            approve(s, ids[seed], None)
        both = take_snapshot(s)
        reviewed = take_snapshot(s, states=APPROVED_ONLY)
        seen = max_label_revision_id(s, APPROVED_ONLY)
    assert (both.num_labels, both.num_approved) == (4, 3)
    assert (reviewed.num_labels, reviewed.num_approved) == (3, 3)
    assert ids[4] not in {x.image_id for x in reviewed.train + reviewed.val}
    assert ids[4] not in reviewed.unlabeled           # submitted: waiting for review, not unlabelled
    with session_scope(sessions) as s:
        assert count_labels_since(s, seen, APPROVED_ONLY) == 0
        assert count_labels_since(s, seen) == 0
        approve(s, ids[4], None)                       # the same pixels, now reviewed:
    with session_scope(sessions) as s:                 # new for an approved-only run only
        assert count_labels_since(s, seen, APPROVED_ONLY) == 1
        assert take_snapshot(s, states=APPROVED_ONLY).num_labels == 4
