"""Another site cannot drive the studio through a visitor's browser (CSRF, DNS rebinding)."""
from __future__ import annotations

import httpx
import pytest

from tests.webapp.helpers import app_for, auth, face_bytes, make_studio
from tests.webapp.live import LiveServer
from webapp.guards import refusal


def _count_images(client: httpx.Client) -> int:
    return client.get("/api/images").json()["total"]


@pytest.fixture()
def open_studio(settings):
    studio = make_studio(settings, users=False)
    with LiveServer(app_for(studio)) as url:
        yield studio, url


def test_open_mode_refuses_cross_site_writes_and_foreign_host_names(open_studio):
    _studio, url = open_studio
    client = httpx.Client(base_url=url, timeout=60)
    upload = {"file": ("face.png", face_bytes(1), "image/png")}
    evil = client.post("/api/images", files=upload, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "cross-site" in evil.json()["detail"]
    assert _count_images(client) == 0
    rebound = client.get("/api/images", headers={"Host": "evil.example"})
    assert rebound.status_code == 403 and "localhost" in rebound.json()["detail"]
    own = client.post("/api/images", files=upload, headers={"Origin": url})
    assert own.status_code == 201 and _count_images(client) == 1
    assert client.post("/api/images", files={"file": ("b.png", face_bytes(2), "image/png")}
                       ).status_code == 201  # scripts send no Origin


def test_with_users_a_logged_in_browser_still_cannot_be_used_cross_site(settings):
    studio = make_studio(settings)  # with the users ann, rev and adm
    with LiveServer(app_for(studio)) as url:
        admin = httpx.Client(base_url=url, auth=auth("adm"), timeout=60)
        refused = admin.post("/api/train", headers={"Origin": "https://attacker.example"})
        assert refused.status_code == 403
        named = admin.get("/api/images", headers={"Host": "studio.example"})
        assert named.status_code == 200  # with users, any host name may serve the studio


def test_refusal_rules():
    never_open = lambda: False  # noqa: E731
    assert refusal("GET", "127.0.0.1:7860", "http://evil.example", never_open) is None
    assert refusal("PUT", "127.0.0.1:7860", "http://127.0.0.1:7860", never_open) is None
    assert refusal("DELETE", "host:1", "null", never_open) is not None
    assert refusal("GET", "[::1]:7860", None, lambda: True) is None
