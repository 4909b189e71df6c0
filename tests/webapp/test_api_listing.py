"""GET /api/images and GET /api/jobs at dataset size: pages, cursors, sorts, filters, 422s,
and polling a training job until it fails with its reason."""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from db.jobs import create_job, create_training_job, fail, finish, mark_running, set_progress
from db.models import Image, Job, Revision
from db.users import get_user_by_name
from db.versions import add_version
from tests.webapp.helpers import (SyncTasks, app_for, basic_client, face_bytes, make_studio,
                                  png_of)
from webapp import actions

ITEM_FIELDS = {"id", "filename", "width", "height", "label_width", "label_height", "status",
               "revision"}
JOB_FIELDS = {"id", "kind", "state", "progress", "message", "error", "params", "created_by",
              "created_at", "started_at", "finished_at", "updated_at", "model_version"}


@pytest.fixture()
def studio(settings):
    return make_studio(settings, tasks=SyncTasks())


@pytest.fixture()
def app(studio):
    return app_for(studio)


client = basic_client


def save(c: TestClient, image_id: int, value: int) -> None:
    r = c.put(f"/api/images/{image_id}/annotation", headers={"If-Match": "*"},
              content=png_of(np.full((64, 64), value, np.uint8)))
    assert r.status_code == 200, r.text


def walk(c: TestClient, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        r = c.get("/api/images", params={**params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        if body["next"] is None:
            return items
        cursor = body["next"]


def test_images_pages_sorts_filters_and_refuses_bad_values(studio, app):
    ann, rev = client(app, "ann"), client(app, "rev")
    ids = [actions.add_image(studio, None, face_bytes(seed), f"face_{seed}.png").id
           for seed in range(7)]
    save(ann, ids[1], 1)
    save(ann, ids[2], 2)
    assert ann.post(f"/api/images/{ids[2]}/submit").status_code == 200
    save(rev, ids[3], 3)
    assert rev.post(f"/api/images/{ids[3]}/submit").status_code == 200
    assert rev.post(f"/api/images/{ids[3]}/approve").status_code == 200
    with studio.session() as session:  # priorities with a tie and a gap
        for image_id, priority in zip(ids, [0.5, 0.9, None, 0.5, 0.1, None, 0.7]):
            session.execute(update(Image).where(Image.id == image_id).values(priority=priority))

    body = ann.get("/api/images").json()
    assert set(body) == {"items", "total", "next"}
    assert body["total"] == 7 and body["next"] is None
    assert [i["id"] for i in body["items"]] == ids
    assert all(set(i) == ITEM_FIELDS for i in body["items"])
    assert body["items"][2] == {"id": ids[2], "filename": "face_2.png", "width": 64, "height": 64,
                                "label_width": 64, "label_height": 64, "status": "submitted",
                                "revision": 2}

    first = ann.get("/api/images", params={"limit": 3, "sort": "-priority"}).json()
    assert first["total"] == 7 and first["next"] is not None and len(first["items"]) == 3
    by_priority = [ids[1], ids[6], ids[3], ids[0], ids[4], ids[5], ids[2]]  # ties: id desc, none last
    assert [i["id"] for i in walk(ann, limit=3, sort="-priority")] == by_priority
    assert [i["id"] for i in walk(ann, limit=2, sort="priority")] == [
        ids[4], ids[0], ids[3], ids[6], ids[1], ids[2], ids[5]]
    assert [i["id"] for i in walk(ann, limit=2, sort="-id")] == ids[::-1]
    assert [i["id"] for i in walk(ann, limit=4, sort="-updated")][:3] == [ids[3], ids[2], ids[1]]

    def listed(**params) -> list[int]:
        r = ann.get("/api/images", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(r.json()["items"])
        return [i["id"] for i in r.json()["items"]]

    assert listed(status="unlabeled") == [ids[0], ids[4], ids[5], ids[6]]
    assert listed(status="approved") == [ids[3]]
    assert listed(q="CE_1") == [ids[1]]  # any case, any part of the file name
    assert listed(labelled_by="ann") == [ids[1], ids[2]]
    assert listed(labelled_by="rev") == [ids[3]]  # it saved and submitted; the approval is not labelling
    assert listed(labelled_by="adm") == []
    with studio.session() as session:
        marks = {r.image_id: r.created_at for r in session.query(Revision)}
    since = marks[ids[3]] - timedelta(microseconds=1)
    assert listed(updated_since=since.isoformat() + "Z", sort="id") == [ids[3]]
    assert listed(updated_since=(since + timedelta(hours=2)).isoformat() + "+02:00") == [ids[3]]
    assert listed(updated_since="2000-01-01", status="draft") == [ids[1]]

    for params, message in [
        ({"sort": "name"}, "unknown sort 'name' (one of id, -id, priority, -priority, updated, -updated)"),
        ({"status": "done"}, "unknown status 'done'"),
        ({"labelled_by": "nobody"}, "no user named 'nobody'"),
        ({"updated_since": "last week"}, "not an ISO 8601 time"),
        ({"limit": 0}, "limit must be between 1 and 1000"),
        ({"limit": 1001}, "limit must be between 1 and 1000"),
        ({"cursor": "nonsense"}, "bad cursor"),
        ({"cursor": first["next"], "sort": "id"}, "same sort"),
    ]:
        r = ann.get("/api/images", params=params)
        assert r.status_code == 422 and message in r.json()["detail"], (params, r.text)
    assert client(app, None).get("/api/images").status_code == 401


def test_30000_images_page_quickly(studio, app):
    n = 30_000
    started = time.perf_counter()
    with studio.session() as session:
        session.execute(insert(Image), [
            dict(id=i, k=i, sha256=f"{i:064x}", file_path=f"images/{i}.jpg", width=1024,
                 height=1024, label_width=512, label_height=512, source_name=f"{i - 1}.jpg",
                 split="train", priority=(i * 37 % 1000) / 1000) for i in range(1, n + 1)])
        session.execute(insert(Revision), [
            dict(image_id=i, revision=1, author_id=None, state="approved" if i % 3 else "draft",
                 origin="imported", label_png=b"png") for i in range(1, n + 1, 2)])
    print(f"\ninserted {n} images ({n // 2} labelled) in {time.perf_counter() - started:.2f} s")
    c = client(app, "ann")
    assert c.get("/api/images", params={"limit": 1}).status_code == 200  # warm: login, first query
    for params, total, first_ids in [
        ({}, n, list(range(1, 101))),
        ({"sort": "-id", "status": "unlabeled"}, n // 2, list(range(n, n - 200, -2))),
        ({"status": "approved", "limit": 1000}, 10_000,
         [i for i in range(1, 3001, 2) if i % 3][:1000]),
        ({"q": "2999"}, 13, [3000, 13_000, 23_000] + [29_991 + d for d in range(10)]),
    ]:
        started = time.perf_counter()
        r = c.get("/api/images", params=params)
        took = time.perf_counter() - started
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == total and [i["id"] for i in body["items"]] == first_ids
        assert (body["next"] is None) == (total <= len(first_ids))
        print(f"GET /api/images {params or ''}: {len(body['items'])} of {total} in {took * 1000:.0f} ms")
    item = c.get("/api/images", params={"limit": 1, "sort": "-priority"}).json()["items"][0]
    assert item == {"id": item["id"], "filename": f"{item['id'] - 1}.jpg", "width": 1024,
                    "height": 1024, "label_width": 512, "label_height": 512,
                    "status": "unlabeled" if item["id"] % 2 == 0 else
                    ("approved" if item["id"] % 3 else "draft"),
                    "revision": None if item["id"] % 2 == 0 else 1}


def test_a_training_job_is_polled_until_it_fails_with_its_reason(studio, app):
    rev, ann = client(app, "rev"), client(app, "ann")
    queued = rev.post("/api/train")
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["job"]
    polled = ann.get(f"/api/jobs/{job_id}")  # reading needs only the view role
    assert polled.status_code == 200, polled.text
    assert polled.json()["state"] == "queued" and polled.json()["params"] == {"source": "api"}
    assert polled.json()["created_by"] == "rev"
    with studio.session() as session:  # what the worker does with too few labels
        mark_running(session, job_id)
        set_progress(session, job_id, 0.05, "collecting labels")
        fail(session, job_id, "too few labelled images: 2 submitted or approved, need at least 4")
    job = ann.get(f"/api/jobs/{job_id}").json()
    assert set(job) == JOB_FIELDS | {"points", "last_point"}
    assert job["state"] == "failed" and job["kind"] == "train"
    assert job["error"] == "too few labelled images: 2 submitted or approved, need at least 4"
    assert job["progress"] == 0.05 and job["message"] == "collecting labels"
    assert job["model_version"] is None and job["points"] == 0 and job["last_point"] is None
    created, started_at, finished = (datetime.fromisoformat(job[k]) for k in
                                     ("created_at", "started_at", "finished_at"))
    assert created <= started_at <= finished


def test_jobs_newest_first_with_filters_pages_and_versions(studio, app):
    with studio.session() as session:
        adm = get_user_by_name(session, "adm").id
        failed = create_training_job(session, {"source": "api", "steps": 4}, adm).id
        mark_running(session, failed)
        fail(session, failed, "CUDA out of memory")
        embed = create_job(session, "embed", {"ids": list(range(500))}).id
        done = create_training_job(session, {"trigger": "auto", "new_labels": 12}).id
        mark_running(session, done)
        finish(session, done, "published v1")
        version = add_version(session, "models/v1.pt", {}, {"mean_f1": 0.7}, job_id=done).id
        queued = create_job(session, "train").id
    c = client(app, "ann")
    body = c.get("/api/jobs").json()
    assert set(body) == {"items", "total", "next"} and body["total"] == 4 and body["next"] is None
    assert [j["id"] for j in body["items"]] == [queued, done, embed, failed]
    assert all(set(j) == JOB_FIELDS for j in body["items"])
    by_id = {j["id"]: j for j in body["items"]}
    assert by_id[done]["model_version"] == version and by_id[done]["state"] == "succeeded"
    assert by_id[done]["progress"] == 1.0 and by_id[done]["message"] == "published v1"
    assert by_id[failed]["error"] == "CUDA out of memory" and by_id[failed]["created_by"] == "adm"
    assert by_id[embed]["params"]["ids"].startswith("[0, 1, 2") and len(by_id[embed]["params"]["ids"]) == 200
    assert by_id[queued]["started_at"] is None and by_id[queued]["state"] == "queued"

    page = c.get("/api/jobs", params={"limit": 3}).json()
    assert [j["id"] for j in page["items"]] == [queued, done, embed] and page["total"] == 4
    rest = c.get("/api/jobs", params={"limit": 3, "cursor": page["next"]}).json()
    assert [j["id"] for j in rest["items"]] == [failed] and rest["next"] is None
    trains = c.get("/api/jobs", params={"kind": "train", "state": "failed"}).json()
    assert [j["id"] for j in trains["items"]] == [failed] and trains["total"] == 1
    assert c.get("/api/jobs", params={"kind": "score"}).json() == {"items": [], "total": 0,
                                                                  "next": None}
    for params, message in [
        ({"state": "done"}, "unknown state 'done' (one of queued, running, succeeded, failed)"),
        ({"limit": 5000}, "limit must be between 1 and 1000"),
        ({"cursor": "x1"}, "bad cursor"),
    ]:
        r = c.get("/api/jobs", params=params)
        assert r.status_code == 422 and message in r.json()["detail"], r.text
    missing = c.get("/api/jobs/999")
    assert missing.status_code == 404 and "no job with id 999" in missing.json()["detail"]
    assert client(app, None).get(f"/api/jobs/{failed}").status_code == 401
    with studio.session() as session:
        assert session.get(Job, done).state.value == "succeeded"
