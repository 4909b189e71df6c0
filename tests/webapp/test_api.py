"""A REST session against a live server on 127.0.0.1 with a real SQLite file and real PNGs."""
from __future__ import annotations

import io
import struct
import zipfile
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage

from core.imageio import decode_label_png
from db.models import Prediction, Revision
from tests.webapp.helpers import (SyncTasks, app_for, auth, face_bytes, make_studio, png_of,
                                  publish_version)
from tests.webapp.live import LiveServer


def _bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header claims 10^10 pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.fixture()
def api(settings):
    tasks = SyncTasks()
    studio = make_studio(settings, tasks=tasks)
    with LiveServer(app_for(studio)) as url:
        yield studio, tasks, url


def _revisions(studio, image_id):
    with studio.session() as session:
        return [(r.revision, r.state.value, r.label_png) for r in
                session.query(Revision).filter_by(image_id=image_id).order_by(Revision.id)]


def test_rest_session(api, tiny_parser):
    studio, tasks, url = api
    ann = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)

    # Upload: a real image; the same bytes again are the same image; bad files are refused.
    r = ann.post("/api/images", files={"file": ("face.png", face_bytes(1), "image/png")})
    assert r.status_code == 201, r.text
    image_id = r.json()["id"]
    assert r.json()["width"] == 64 and r.json()["created"] is True
    assert ("prediction", image_id) in tasks.calls and ("embedding", image_id) in tasks.calls
    again = ann.post("/api/images", files={"file": ("copy.png", face_bytes(1), "image/png")})
    assert again.status_code == 200 and again.json()["id"] == image_id
    for name, data, reason in [("x.png", b"not an image at all", "not an image"),
                               ("bomb.png", _bomb_png(), "decompression bomb"),
                               ("cut.png", face_bytes(2)[:300], "corrupt or truncated")]:
        bad = ann.post("/api/images", files={"file": (name, data, "image/png")})
        assert bad.status_code == 422 and reason in bad.json()["detail"], bad.text
    assert [i["id"] for i in ann.get("/api/images").json()["items"]] == [image_id]
    assert ann.get(f"/api/images/{image_id}/image").content == face_bytes(1)

    # Prediction before any model: an empty map, and a header saying so.
    pred = ann.get(f"/api/images/{image_id}/prediction")
    assert pred.status_code == 200 and pred.headers["X-Model-Version"] == "none"
    assert not decode_label_png(pred.content, 19, (64, 64)).any()
    # With an active model: computed once, then served from the cache.
    version = publish_version(studio, tiny_parser, "v1.pt", {"mean_f1": 0.5})
    pred = ann.get(f"/api/images/{image_id}/prediction")
    assert pred.headers["X-Model-Version"] == str(version) and pred.headers["X-Prediction"] == "computed"
    assert decode_label_png(pred.content, 19, (64, 64)).shape == (64, 64)
    assert ann.get(f"/api/images/{image_id}/prediction").headers["X-Prediction"] == "cached"
    with studio.session() as session:
        assert session.query(Prediction).filter_by(image_id=image_id).count() == 1

    # Save a label map, read it back bit-exact.
    assert ann.get(f"/api/images/{image_id}/annotation").status_code == 404
    rng = np.random.default_rng(0)
    first = rng.integers(0, 19, (64, 64), dtype=np.uint8)
    first_png = png_of(first)
    r = ann.put(f"/api/images/{image_id}/annotation", content=first_png,
                headers={"Content-Type": "image/png"})
    assert r.status_code == 200 and r.json() == {"revision": 1}, r.text
    got = ann.get(f"/api/images/{image_id}/annotation")
    assert got.headers["ETag"] == '"1"' and got.content == first_png
    assert np.array_equal(decode_label_png(got.content, 19, (64, 64)), first)

    # Save again on top of revision 1.
    second = first.copy()
    second[10:20, 10:40] = 13
    r = ann.put(f"/api/images/{image_id}/annotation", content=png_of(second),
                headers={"If-Match": got.headers["ETag"]})
    assert r.status_code == 200 and r.json() == {"revision": 2}
    # The same PUT again (a retry after a lost answer): the same revision, nothing stored twice.
    r = ann.put(f"/api/images/{image_id}/annotation", content=png_of(second),
                headers={"If-Match": got.headers["ETag"]})
    assert r.status_code == 200 and r.json() == {"revision": 2}, r.text

    # A stale If-Match: 409, the main line is unchanged, the work is kept as a draft row.
    stale = first.copy()
    stale[:] = 1
    r = ann.put(f"/api/images/{image_id}/annotation", content=png_of(stale), headers={"If-Match": '"1"'})
    assert r.status_code == 409 and r.json()["current_revision"] == 2, r.text
    now = ann.get(f"/api/images/{image_id}/annotation")
    assert now.headers["ETag"] == '"2"'
    assert np.array_equal(decode_label_png(now.content, 19, (64, 64)), second)
    rows = _revisions(studio, image_id)
    assert [(n, s) for n, s, _ in rows] == [(1, "draft"), (2, "draft"), (None, "draft")]
    assert decode_label_png(rows[-1][2], 19).min() == 1   # the losing save's pixels are kept

    # Bad label maps: 422 with a reason, nothing stored.
    too_high = first.copy()
    too_high[0, 0] = 19
    rgb = np.stack([first] * 3, axis=-1)
    jpeg = io.BytesIO()
    PILImage.fromarray(rgb).save(jpeg, format="JPEG")
    for body, reason in [(png_of(too_high), "out of range"),
                         (png_of(first[:32]), "expected 64x64"),
                         (jpeg.getvalue(), "must be PNG"),
                         (png_of(rgb), "single-channel"),
                         (b"", "empty")]:
        r = ann.put(f"/api/images/{image_id}/annotation", content=body, headers={"If-Match": '"2"'})
        assert r.status_code == 422 and reason in r.json()["detail"], (reason, r.text)
    assert len(_revisions(studio, image_id)) == 3
    assert ann.put("/api/images/999/annotation", content=first_png).status_code == 404

    # Submit over the API; an annotator may not approve, export, activate or train.
    r = ann.put(f"/api/images/{image_id}/annotation?state=submitted", content=png_of(second),
                headers={"If-Match": '"2"'})
    assert r.json() == {"revision": 3} and ("label_saved", image_id) in tasks.calls
    for method, path in [("POST", f"/api/images/{image_id}/approve"), ("GET", "/api/export"),
                         ("POST", f"/api/models/{version}/activate"), ("POST", "/api/train")]:
        r = ann.request(method, path)
        assert r.status_code == 403 and "annotator" in r.json()["detail"], (path, r.text)
    assert _revisions(studio, image_id)[-1][1] == "submitted"

    rev = httpx.Client(base_url=url, auth=auth("rev"), timeout=60)
    r = rev.post(f"/api/images/{image_id}/approve", json={"comment": "clean"})
    assert r.status_code == 200 and r.json() == {"revision": 4, "state": "approved"}
    assert rev.post(f"/api/images/{image_id}/approve").status_code == 409  # already approved
    export = rev.get("/api/export?status=approved")
    assert export.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(export.content)).namelist()
    assert any(n.endswith("CelebAMask-HQ-mask/0.png") for n in names), names
    assert rev.post(f"/api/models/{version}/activate").status_code == 403

    adm = httpx.Client(base_url=url, auth=auth("adm"), timeout=60)
    assert adm.post(f"/api/models/{version}/activate").json() == {"active": version}
    assert ("scoring", version) in tasks.calls
    assert adm.post("/api/models/999/activate").status_code == 404
    models = adm.get("/api/models").json()
    assert models[0]["id"] == version and models[0]["active"] and models[0]["metrics"]["mean_f1"] == 0.5
    train = rev.post("/api/train")
    assert train.status_code == 202 and ("training", train.json()["job"]) in tasks.calls
    assert rev.post("/api/train").status_code == 409   # one training job at a time


def test_credentials_are_required_when_users_exist(api):
    studio, _, url = api
    assert httpx.get(url + "/api/health").json()["status"] == "ok"   # health is public
    for path in ["/api/images", "/api/models", "/api/images/1/annotation"]:
        r = httpx.get(url + path)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic"), path
    assert httpx.get(url + "/api/images", auth=("ann", "wrong")).status_code == 401
    assert httpx.get(url + "/api/images", auth=("nobody", "x")).status_code == 401
    r = httpx.post(url + "/api/images", files={"file": ("a.png", face_bytes(3), "image/png")})
    assert r.status_code == 401
    with studio.session() as session:
        assert session.query(Revision).count() == 0
    # The UI asks for a login too.
    assert httpx.get(url + "/gradio_api/info").status_code in (401, 403)


def test_active_model_is_picked_up_without_restart(api, tiny_parser):
    studio, _, url = api
    client = httpx.Client(base_url=url, auth=auth("adm"), timeout=60)
    image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(4), "image/png")}).json()["id"]
    v1 = publish_version(studio, tiny_parser, "v1.pt")
    assert client.get(f"/api/images/{image_id}/prediction").headers["X-Model-Version"] == str(v1)
    v2 = publish_version(studio, tiny_parser, "v2.pt", make_active=False)
    assert client.post(f"/api/models/{v2}/activate").status_code == 200
    assert client.get(f"/api/images/{image_id}/prediction").headers["X-Model-Version"] == str(v2)
    assert client.get("/api/health").json()["model_version"] == v2
    v3 = publish_version(studio, tiny_parser, "v3.pt")
    assert client.get(f"/api/images/{image_id}/prediction").headers["X-Model-Version"] == str(v3)
    assert studio.predictions.loaded_versions() == [v2, v3]   # only the newest two stay in memory


def test_if_match_star_saves_over_whatever_is_current(api):
    _studio, _tasks, url = api
    ann = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
    image_id = ann.post("/api/images", files={"file": ("f.png", face_bytes(3), "image/png")}).json()["id"]
    for value, expected in ((1, 1), (2, 2)):
        labels = np.full((64, 64), value, np.uint8)
        r = ann.put(f"/api/images/{image_id}/annotation", content=png_of(labels),
                    headers={"If-Match": "*", "Content-Type": "image/png"})
        assert r.status_code == 200 and r.json()["revision"] == expected, r.text
    got = ann.get(f"/api/images/{image_id}/annotation")
    assert got.headers["ETag"] == '"2"' and (decode_label_png(got.content, 19) == 2).all()
    stale = ann.put(f"/api/images/{image_id}/annotation", content=png_of(np.zeros((64, 64), np.uint8)),
                    headers={"If-Match": '"1"', "Content-Type": "image/png"})
    assert stale.status_code == 409  # an explicit revision is still checked


def test_the_ui_login_cookie_carries_the_same_user_and_roles_to_the_api(api):
    studio, _, url = api
    ann, rev = httpx.Client(base_url=url, timeout=60), httpx.Client(base_url=url, timeout=60)
    for client, name in ((ann, "ann"), (rev, "rev")):
        user, password = auth(name)
        assert client.post("/login", data={"username": user, "password": password}).status_code == 200
    created = ann.post("/api/images", files={"file": ("f.png", face_bytes(5), "image/png")})
    assert created.status_code == 201, created.text            # no Basic header: the cookie
    image_id = created.json()["id"]
    labels = png_of(np.full((64, 64), 13, np.uint8))
    assert ann.put(f"/api/images/{image_id}/annotation", content=labels).status_code == 200
    assert ann.post(f"/api/images/{image_id}/submit").status_code == 200
    refused = ann.post(f"/api/images/{image_id}/approve")
    assert refused.status_code == 403 and "needs the reviewer role" in refused.json()["detail"]
    assert rev.post(f"/api/images/{image_id}/approve").json()["state"] == "approved"
    with studio.session() as session:   # the revisions name who acted
        authors = [r.author.name for r in session.query(Revision).filter_by(image_id=image_id)
                   .order_by(Revision.id)]
    assert authors == ["ann", "ann", "rev"]
    # A page elsewhere cannot use the cookie to write; a made-up cookie is nobody.
    cross = rev.post(f"/api/images/{image_id}/reject", headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403
    forged = httpx.Client(base_url=url, cookies={k: "forged" for k in ann.cookies.keys()})
    assert forged.get("/api/images").status_code == 401


def test_a_server_function_call_acts_as_the_user_of_the_login_cookie(settings):
    """Gradio gives a component's server function a request without the user name; the
    studio reads the login cookie that the call carries (webapp/browser_login.py)."""
    from types import SimpleNamespace

    from starlette.requests import Request

    from webapp.auth import AccessDenied
    from webapp.browser_login import _gradio_app
    from webapp.ui.common import actor_of as ui_actor

    studio = make_studio(settings)
    app = app_for(studio)
    with LiveServer(app) as url:
        client = httpx.Client(base_url=url, timeout=60)
        assert client.post("/login", data=dict(zip(("username", "password"), auth("rev")))
                           ).status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())

    def call(cookie_header: str) -> SimpleNamespace:
        scope = {"type": "http", "app": _gradio_app(app),
                 "headers": [(b"cookie", cookie_header.encode())]}
        return SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"),
                               request=Request(scope))

    who = ui_actor(studio, call(cookie))
    assert (who.name, who.role.value) == ("rev", "reviewer")
    with pytest.raises(AccessDenied):
        ui_actor(studio, call("access-token-x=nothing"))
