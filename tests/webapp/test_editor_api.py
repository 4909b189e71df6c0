"""The browser editor's routes (webapp/editor_api.py) on a real SQLite studio: config, open,
queue, revisions, restore, and the UI login cookie."""
from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient

from core.imageio import decode_label_png
from core.labels import CELEBAMASK
from db.models import Revision
from tests.webapp.helpers import app_for, auth, basic_client, face_bytes, make_studio, png_of
from webapp import actions
from webapp.sam_service import NOT_CONFIGURED

SIZE = 64  # synthetic faces are SIZE x SIZE; label maps are stored at the same size


@pytest.fixture()
def studio(settings):
    return make_studio(settings)


@pytest.fixture()
def app(studio):
    return app_for(studio)


client = basic_client


def add_faces(studio, count: int) -> list[int]:
    """``count`` new images, ids in upload order."""
    return [actions.add_image(studio, None, face_bytes(seed), f"f{seed}.png").id
            for seed in range(count)]


def save(c: TestClient, image_id: int, value: int, base: int | None = None) -> int:
    """Save an all-``value`` label map over revision ``base``; the new revision number."""
    headers = {"If-Match": f'"{base}"'} if base is not None else {}
    r = c.put(f"/api/images/{image_id}/annotation", headers=headers,
              content=png_of(np.full((SIZE, SIZE), value, np.uint8)))
    assert r.status_code == 200, r.text
    return r.json()["revision"]


def labels_of(opened: dict) -> np.ndarray:
    """The ``label_height x label_width`` start map of an opened-image JSON."""
    return decode_label_png(base64.b64decode(opened["labels_png"]), CELEBAMASK.num_classes,
                            (opened["label_width"], opened["label_height"]))


def main_line(studio, image_id: int) -> list[int | None]:
    with studio.session() as session:
        return [r.revision for r in session.query(Revision).filter_by(image_id=image_id)
                .order_by(Revision.id)]


def test_config_lists_the_classes_and_says_sam_is_off(app, studio):
    cfg = client(app).get("/api/editor/config").json()
    assert (cfg["user"], cfg["role"], cfg["can_annotate"]) == ("ann", "annotator", True)
    assert [c["id"] for c in cfg["classes"]] == list(range(19))
    assert [c["color"] for c in cfg["classes"]] == CELEBAMASK.hex_colors()
    by_name = {c["name"]: c for c in cfg["classes"]}
    assert by_name["skin"]["key"] == "1" and by_name["hair"]["key"] == "h"
    assert by_name["hair"]["label"] == CELEBAMASK.human_name(CELEBAMASK.id("hair"))
    assert cfg["sam"] is None and cfg["sam_hint"] == NOT_CONFIGURED
    assert cfg["max_label_bytes"] == studio.options.max_label_bytes


def test_open_starts_from_the_latest_revision(app, studio):
    ann = client(app)
    image_id, fresh_id = add_faces(studio, 2)
    save(ann, image_id, 1)
    save(ann, image_id, 13, base=1)

    opened = ann.get(f"/api/images/{image_id}/open").json()
    assert (opened["width"], opened["height"], opened["scale"]) == (SIZE, SIZE, [1.0, 1.0])
    assert opened["base_revision"] == 2 and opened["start"]["source"] == "revision"
    assert opened["start"]["revision"]["revision"] == 2
    assert (labels_of(opened) == 13).all()
    assert [(h["revision"], h["author"]) for h in opened["history"]] == [(1, "ann"), (2, "ann")]
    assert ann.get(opened["image_url"]).content == face_bytes(0)

    empty = ann.get(f"/api/images/{fresh_id}/open").json()
    assert empty["base_revision"] is None and empty["start"]["source"] == "empty"
    assert not labels_of(empty).any() and empty["history"] == []
    assert ann.get("/api/images/999/open").status_code == 404


def test_next_leases_distinct_images_and_honours_skip_and_release(app, studio):
    ann, rev = client(app), client(app, "rev")
    assert ann.post("/api/queue/next").json() == {"image": None}   # nothing uploaded yet
    first, second, third = add_faces(studio, 3)

    assert ann.post("/api/queue/next").json()["image"]["id"] == first
    assert rev.post("/api/queue/next", json={}).json()["image"]["id"] == second
    held = ann.get(f"/api/images/{second}/open").json()["held_until"]
    assert held is not None and held.endswith("+00:00")          # rev's lease, in UTC

    skip = {"skipped": [first], "release": first}
    assert ann.post("/api/queue/next", json=skip).json()["image"]["id"] == third
    skip = {"skipped": [first, third], "release": None}
    assert ann.post("/api/queue/next", json=skip).json() == {"image": None}
    # `first` was released, so it is free again for anyone.
    assert rev.post("/api/queue/next").json()["image"]["id"] == first


def test_revisions_and_restore(app, studio):
    ann, rev = client(app), client(app, "rev")
    image_id = add_faces(studio, 1)[0]
    save(ann, image_id, 1)
    save(rev, image_id, 2, base=1)

    r = ann.post(f"/api/images/{image_id}/restore", json={"revision": 1}, headers={"If-Match": '"2"'})
    assert r.status_code == 200 and r.json() == {"revision": 3} and r.headers["ETag"] == '"3"', r.text
    assert (labels_of(ann.get(f"/api/images/{image_id}/open").json()) == 1).all()

    stale = ann.post(f"/api/images/{image_id}/restore", json={"revision": 2},
                     headers={"If-Match": '"2"'})
    assert stale.status_code == 409 and stale.json()["current_revision"] == 3, stale.text
    assert main_line(studio, image_id) == [1, 2, 3, None]     # the copy is only a kept draft

    history = ann.get(f"/api/images/{image_id}/revisions").json()
    assert [(h["revision"], h["author"], h["state"]) for h in history] == [
        (1, "ann", "draft"), (2, "rev", "draft"), (3, "ann", "draft"), (None, "ann", "draft")]
    assert history[2]["comment"] == "restored revision 1"

    star = ann.post(f"/api/images/{image_id}/restore", json={"revision": 1}, headers={"If-Match": "*"})
    assert star.status_code == 422
    unknown = ann.post(f"/api/images/{image_id}/restore", json={"revision": 9},
                       headers={"If-Match": '"3"'})
    assert unknown.status_code == 409 and "no revision 9" in unknown.json()["detail"]
    assert ann.get("/api/images/999/revisions").status_code == 404
    assert main_line(studio, image_id) == [1, 2, 3, None]


def test_the_ui_login_cookie_works_and_credentials_are_required(app, studio):
    image_id = add_faces(studio, 1)[0]
    anonymous = client(app, None)
    for method, path in [("GET", "/api/editor/config"), ("GET", f"/api/images/{image_id}/open"),
                         ("POST", "/api/queue/next"), ("GET", f"/api/images/{image_id}/revisions")]:
        assert anonymous.request(method, path).status_code == 401, path

    browser = client(app, None)
    user, password = auth("rev")
    assert browser.post("/login", data={"username": user, "password": password}).status_code == 200
    assert browser.get("/api/editor/config").json()["user"] == "rev"
    assert browser.post("/api/queue/next").json()["image"]["id"] == image_id
    save(browser, image_id, 5, base=save(browser, image_id, 4))
    r = browser.post(f"/api/images/{image_id}/restore", json={"revision": 1},   # as a page does
                     headers={"If-Match": '"2"', "Origin": "http://testserver"})
    assert r.status_code == 200 and r.json() == {"revision": 3}, r.text
    history = browser.get(f"/api/images/{image_id}/revisions").json()
    assert [h["author"] for h in history] == ["rev"] * 3
