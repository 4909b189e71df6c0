"""Request bodies are capped before they are read: 413 with the limit, nothing stored."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from db.models import Image, Revision
from tests.webapp.helpers import app_for, auth, face_bytes, make_studio, png_of
from tests.webapp.live import LiveServer
from webapp.body_limits import BodyLimits
from webapp.options import ServeOptions


@pytest.fixture()
def small_limits(settings):
    studio = make_studio(settings, ServeOptions(max_upload_bytes=4000, max_label_bytes=600))
    with LiveServer(app_for(studio)) as url:
        yield studio, httpx.Client(base_url=url, auth=auth("adm"), timeout=60)


def _chunks(data: bytes, size: int = 256):
    """A body of undeclared length (chunked transfer encoding)."""
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _counts(studio) -> tuple[int, int]:
    with studio.session() as session:
        return session.query(Image).count(), session.query(Revision).count()


def test_an_oversize_upload_is_refused_before_it_is_read(small_limits):
    studio, client = small_limits
    big = face_bytes(1, size=128)
    assert len(big) > 4000
    r = client.post("/api/images", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413 and "4,000 bytes" in r.json()["detail"], r.text
    chunked = client.post("/api/images", content=_chunks(b"x" * 5000),
                          headers={"Content-Type": "application/octet-stream"})
    assert chunked.status_code == 413
    assert _counts(studio) == (0, 0)
    small = face_bytes(2, size=32)
    assert client.post("/api/images", files={"file": ("s.png", small, "image/png")}).status_code == 201


def test_an_oversize_label_map_is_refused_and_the_image_keeps_its_revisions(small_limits):
    studio, client = small_limits
    image_id = client.post("/api/images", files={"file": ("s.png", face_bytes(3, size=32),
                                                          "image/png")}).json()["id"]
    noisy = np.random.default_rng(0).integers(0, 19, (32, 32), dtype=np.uint8)
    body = png_of(noisy)
    assert len(body) > 600
    r = client.put(f"/api/images/{image_id}/annotation", content=body)
    assert r.status_code == 413 and "600 bytes" in r.json()["detail"]
    r = client.put(f"/api/images/{image_id}/annotation", content=_chunks(body, 100))
    assert r.status_code == 413
    assert _counts(studio) == (1, 0)
    flat = png_of(np.full((32, 32), 13, np.uint8))
    assert len(flat) <= 600
    assert client.put(f"/api/images/{image_id}/annotation", content=flat).status_code == 200


def test_limits_by_route():
    limits = BodyLimits(upload=10, label_map=20, other=30)
    assert limits.for_request("POST", "/api/images") == 10
    assert limits.for_request("PUT", "/api/images/7/annotation") == 20
    assert limits.for_request("POST", "/api/images/7/sam") == 30
    assert limits.for_request("POST", "/gradio_api/queue/join") is None
