"""db/images.page_images and db/jobs.page_jobs: SQL paging, keyset cursors, filters, counts."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, insert

from core.errors import FacetError
from db.engine import session_scope
from db.images import (IMAGE_SORTS, ImageFilter, count_images, list_images, page_images,
                       parse_time)
from db.jobs import create_job, fail, finish, job_info, mark_running, page_jobs
from db.models import Image, Origin, Revision, RevisionState
from db.users import create_user
from db.versions import add_version

T0 = datetime(2024, 1, 1)
STATES = [None, RevisionState.draft, RevisionState.submitted, RevisionState.approved,
          RevisionState.rejected]


def fill(session, n: int, users: dict[str, int]) -> list[dict]:
    """``n`` image rows (no files) with a mix of states, authors, ties and missing priorities,
    inserted in bulk; returns what each image should list as."""
    images, revisions, expected = [], [], []
    for i in range(1, n + 1):
        priority = None if i % 7 == 0 else float(i % 50)  # many ties, some without
        created = T0 + timedelta(seconds=i)
        images.append(dict(id=i, k=i, sha256=f"{i:064x}", file_path=f"images/{i}.png", width=8,
                           height=8, label_width=8, label_height=8, source_name=f"face_{i:05d}.jpg",
                           split="train", priority=priority, created_at=created))
        state = STATES[i % 5]
        row = dict(id=i, status="unlabeled", revision=None, priority=priority, updated=created,
                   authors=set())
        if state is not None:
            author = users["ann"] if i % 2 else users["bob"]
            numbers = [1, 2] if i % 3 == 0 else [1]
            mine = []
            for number in numbers:
                at = T0 + timedelta(days=1, seconds=(i * 7919 + number) % 100_000)
                last = number == numbers[-1]
                mine.append(dict(image_id=i, revision=number, author_id=author,
                                 state=(state if last else RevisionState.draft).value,
                                 origin=Origin.human.value, label_png=b"png", created_at=at))
            if state in (RevisionState.approved, RevisionState.rejected):
                mine[-1]["author_id"] = users["rev"]  # the decision is the reviewer's
            row.update(status=state.value, revision=numbers[-1], updated=at,
                       authors={r["author_id"] for r in mine if r["state"] in ("draft", "submitted")})
            mine.append(dict(image_id=i, revision=None, author_id=users["eve"],  # a lost conflict
                             state="draft", origin="human", label_png=b"png",
                             created_at=T0 + timedelta(days=9)))
            revisions += mine
        expected.append(row)
    session.execute(insert(Image), images)
    session.execute(insert(Revision), revisions)
    return expected


def order(rows: list[dict], sort: str) -> list[int]:
    name, descending = sort.lstrip("-"), sort.startswith("-")
    if name == "id":
        return sorted((r["id"] for r in rows), reverse=descending)
    key = "priority" if name == "priority" else "updated"
    present = sorted((r for r in rows if r[key] is not None), key=lambda r: (r[key], r["id"]),
                     reverse=descending)
    absent = sorted((r for r in rows if r[key] is None), key=lambda r: r["id"], reverse=descending)
    return [r["id"] for r in present + absent]


def walk(session, filt: ImageFilter, sort: str, limit: int) -> tuple[list[int], int]:
    ids, cursor, pages = [], None, 0
    while True:
        page = page_images(session, filt, sort, limit, cursor)
        ids += [s.image.id for s in page.items]
        pages += 1
        if page.next is None:
            return ids, pages
        assert len(page.items) == limit
        cursor = page.next


@pytest.fixture()
def users(sessions):
    with session_scope(sessions) as s:
        return {name: create_user(s, name, "pw-" + name, role).id for name, role in
                [("ann", "annotator"), ("bob", "annotator"), ("rev", "reviewer"),
                 ("eve", "annotator"), ("idle", "annotator")]}


def test_every_sort_pages_through_every_image_once_in_order(sessions, users):
    with session_scope(sessions) as s:
        rows = fill(s, 203, users)
    with session_scope(sessions) as s:
        for sort in IMAGE_SORTS:
            ids, pages = walk(s, ImageFilter(), sort, 10)
            assert ids == order(rows, sort), sort
            assert pages == 21
        for filt, keep in [
            (ImageFilter(status="approved"), lambda r: r["status"] == "approved"),
            (ImageFilter(status="unlabeled"), lambda r: r["status"] == "unlabeled"),
            (ImageFilter(name="_0011"), lambda r: 110 <= r["id"] <= 119),
            (ImageFilter(name="FACE_0020"), lambda r: 200 <= r["id"] <= 209),
            (ImageFilter(labelled_by="ann"), lambda r: users["ann"] in r["authors"]),
            (ImageFilter(labelled_by="rev"), lambda r: False),   # decisions are not labelling
            (ImageFilter(labelled_by="idle"), lambda r: False),
            (ImageFilter(updated_since=T0 + timedelta(days=1, seconds=50_000)),
             lambda r: r["updated"] >= T0 + timedelta(days=1, seconds=50_000)),
            (ImageFilter(status="submitted", labelled_by="bob"),
             lambda r: r["status"] == "submitted" and users["bob"] in r["authors"]),
        ]:
            wanted = [r for r in rows if keep(r)]
            for sort in ("id", "-priority", "-updated"):
                ids, _ = walk(s, filt, sort, 7)
                assert ids == order(wanted, sort), (filt, sort)
            assert count_images(s, filt) == len(wanted)
        got = {i.image.id: (i.status, i.revision) for i in page_images(s, limit=1000).items}
        assert got == {r["id"]: (r["status"], r["revision"]) for r in rows}
        assert [i.image.id for i in list_images(s, "rejected")] == [
            r["id"] for r in rows if r["status"] == "rejected"]


def test_bad_values_say_what_is_allowed(sessions, users):
    with session_scope(sessions) as s:
        fill(s, 30, users)
    with session_scope(sessions) as s:
        for call, message in [
            (lambda: page_images(s, sort="name"), "unknown sort 'name'"),
            (lambda: page_images(s, ImageFilter(status="done")), "unknown status 'done'"),
            (lambda: page_images(s, ImageFilter(labelled_by="nobody")), "no user named 'nobody'"),
            (lambda: page_images(s, limit=0), "limit must be between 1 and 1000"),
            (lambda: page_images(s, limit=1001), "limit must be between 1 and 1000"),
            (lambda: page_images(s, cursor="garbage!"), "bad cursor"),
            (lambda: page_images(s, sort="priority", cursor=page_images(s, limit=2).next),
             "same sort"),
            (lambda: parse_time("yesterday"), "not an ISO 8601 time"),
        ]:
            with pytest.raises(FacetError, match=message):
                call()
    assert parse_time("2024-05-01T12:00:00+02:00") == datetime(2024, 5, 1, 10)
    assert parse_time("2024-05-01T10:00:00Z") == parse_time("2024-05-01 10:00") == datetime(2024, 5, 1, 10)


def test_30000_images_a_page_is_two_queries_and_quick(sessions, users):
    n = 30_000
    started = time.perf_counter()
    with session_scope(sessions) as s:
        rows = fill(s, n, users)
    print(f"\ninserted {n} images and their revisions in {time.perf_counter() - started:.2f} s")
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def listen(_conn, _cursor, statement, *_rest) -> None:  # before_cursor_execute
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listen)
    try:
        with session_scope(sessions) as s:
            for filt, sort in [(ImageFilter(), "id"), (ImageFilter(), "-updated"),
                               (ImageFilter(status="approved"), "-priority"),
                               (ImageFilter(name="face_2"), "priority"),
                               (ImageFilter(labelled_by="ann"), "id"),
                               (ImageFilter(updated_since=T0 + timedelta(days=1, seconds=90_000)),
                                "updated")]:
                statements.clear()
                started = time.perf_counter()
                page = page_images(s, filt, sort, 100)
                took = time.perf_counter() - started
                wanted = [r for r in rows if _matches(r, filt, users)]
                assert [i.image.id for i in page.items] == order(wanted, sort)[:100]
                assert page.total == len(wanted) and (page.next is not None) == (len(wanted) > 100)
                assert len(statements) == 2 + (filt.labelled_by is not None)  # + the user's id
                print(f"page of 100 of {page.total} ({filt}, sort={sort}): {took * 1000:.0f} ms")
            started = time.perf_counter()
            ids, pages = walk(s, ImageFilter(), "-priority", 1000)
            print(f"all {n} by -priority in {pages} pages of 1000: "
                  f"{time.perf_counter() - started:.2f} s")
            assert ids == order(rows, "-priority")
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def _matches(row: dict, filt: ImageFilter, users: dict[str, int]) -> bool:
    return ((filt.status is None or row["status"] == filt.status)
            and (filt.name is None or filt.name in f"face_{row['id']:05d}.jpg")
            and (filt.labelled_by is None or users[filt.labelled_by] in row["authors"])
            and (filt.updated_since is None or row["updated"] >= filt.updated_since))


def test_jobs_page_newest_first_with_filters_and_details(sessions, users):
    with session_scope(sessions) as s:
        ids = [create_job(s, kind, {"n": i}, created_by_id=users["ann"] if i == 0 else None).id
               for i, kind in enumerate(["train", "embed", "train", "score", "train"])]
        mark_running(s, ids[0])
        fail(s, ids[0], "too few labels: 2 approved, need at least 4")
        mark_running(s, ids[2])
        finish(s, ids[2], "published")
        version = add_version(s, "models/v.pt", {}, {}, job_id=ids[2]).id
    with session_scope(sessions) as s:
        page = page_jobs(s, limit=2)
        assert [i.job.id for i in page.items] == ids[:-3:-1] and page.total == 5
        rest = page_jobs(s, limit=2, before=page.next)
        assert [i.job.id for i in rest.items] == [ids[2], ids[1]]
        assert [i.job.id for i in page_jobs(s, limit=2, before=rest.next).items] == [ids[0]]
        assert page_jobs(s, limit=2, before=rest.next).next is None
        trains = page_jobs(s, kind="train")
        assert [i.job.id for i in trains.items] == [ids[4], ids[2], ids[0]] and trains.total == 3
        assert [i.model_version_id for i in trains.items] == [None, version, None]
        failed = page_jobs(s, state="failed")
        assert [i.job.id for i in failed.items] == [ids[0]] and failed.total == 1
        assert failed.items[0].created_by == "ann"
        with pytest.raises(FacetError, match="unknown state 'done'"):
            page_jobs(s, state="done")
        info = job_info(s, ids[0])
        assert info.job.error == "too few labels: 2 approved, need at least 4"
        assert info.points == 0 and info.last_point is None
        assert job_info(s, 999) is None
