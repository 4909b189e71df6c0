"""SAM over the API with a tiny random-weight SAM: the encoder runs once per image, ever."""
from __future__ import annotations

import httpx
import numpy as np
import pytest

from core.imageio import decode_label_png
from model.sam import SamEmbedding
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
from tests.webapp.helpers import SyncTasks, app_for, auth, face_bytes, make_studio
from tests.webapp.live import LiveServer
from webapp.options import ServeOptions


@pytest.fixture()
def sam_options(tmp_path) -> ServeOptions:
    ckpt = write_tiny_checkpoint(tmp_path / "tiny_sam.pth")
    return ServeOptions(sam_checkpoint=ckpt, sam_model="tiny", sam_builders=TINY_BUILDERS)


def _encoder_calls(studio) -> list[int]:
    calls = [0]
    studio.sam.model.sam.image_encoder.register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _click(client, image_id, points, box=None, **more):
    return client.post(f"/api/images/{image_id}/sam", json={"points": points, "box": box, **more})


def test_worker_embeds_on_upload_and_clicks_never_run_the_encoder(settings, sam_options):
    tasks = SyncTasks()
    studio = make_studio(settings, sam_options, tasks)
    calls = _encoder_calls(studio)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(5, 96), "image/png")}).json()["id"]
        assert calls[0] == 1                      # the (synchronous) worker embedded it
        row_file = next((studio.settings.cache_dir / "sam").rglob(f"{image_id}.npz"))
        assert SamEmbedding.load(row_file).features.dtype == np.float16
        for points, box in [([[48, 40, 1]], None), ([[48, 40, 1], [5, 5, 0]], None),
                            ([], [20, 20, 80, 90])]:
            r = _click(client, image_id, points, box)
            assert r.status_code == 200, r.text
            mask = decode_label_png(r.content, 256, (96, 96))
            assert set(np.unique(mask)) <= {0, 255} and np.isfinite(float(r.headers["X-Sam-Score"]))
        assert calls[0] == 1, "a click ran the image encoder"
        bad = _click(client, image_id, [[500, 5, 1]])
        assert bad.status_code == 422 and "outside" in bad.json()["detail"]
        assert _click(client, 999, [[1, 1, 1]]).status_code == 404


def test_without_worker_the_first_click_embeds_once_and_the_cache_survives_a_restart(
        settings, sam_options):
    studio = make_studio(settings, sam_options, None)
    calls = _encoder_calls(studio)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(6), "image/png")}).json()["id"]
        assert calls[0] == 0
        first = _click(client, image_id, [[30, 30, 1]])
        second = _click(client, image_id, [[30, 30, 1]])
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and calls[0] == 1
    # A new server process (new model object) reuses the embedding file on disk.
    from webapp.studio import Studio
    again = Studio.create(studio.settings, sam_options, None)
    calls_again = _encoder_calls(again)
    click = again.sam.click(image_id, [(30, 30, 1)], None)
    assert calls_again[0] == 0 and click.answer.mask.shape == (64, 64)


def test_without_a_checkpoint_sam_answers_503_with_how_to_enable_it(settings):
    studio = make_studio(settings)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(7), "image/png")}).json()["id"]
        r = _click(client, image_id, [[3, 3, 1]])
        assert r.status_code == 503 and "--sam-checkpoint" in r.json()["detail"]
        assert client.get("/api/health").json()["sam"] is None


def test_with_a_worker_a_click_before_the_embedding_is_answered_pending_at_once(
        settings, sam_options):
    tasks = SyncTasks()
    studio = make_studio(settings, sam_options, tasks)
    tasks.studio = None                     # a worker that has not got to the image yet
    calls = _encoder_calls(studio)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(8), "image/png")}).json()["id"]
        pending = _click(client, image_id, [[30, 30, 1]])
        assert pending.status_code == 202 and pending.headers["Retry-After"] == "2"
        assert pending.json()["pending"] and "first in the worker's queue" in pending.json()["detail"]
        assert ("urgent embedding", image_id) in tasks.calls and calls[0] == 0
        studio.sam.embedding(image_id)      # the worker's turn
        done = _click(client, image_id, [[30, 30, 1]])
        assert done.status_code == 200 and decode_label_png(done.content, 256).shape == (64, 64)
        assert calls[0] == 1



def test_repeated_clicks_read_the_embedding_file_once(settings, sam_options, monkeypatch):
    studio = make_studio(settings, sam_options, None)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(9), "image/png")}).json()["id"]
        assert _click(client, image_id, [[30, 30, 1]]).status_code == 200   # embeds and caches
        loads = []
        original = SamEmbedding.load
        monkeypatch.setattr(SamEmbedding, "load", classmethod(
            lambda cls, path: loads.append(path) or original(path)))
        studio.sam.forget(image_id)
        for point in ([30, 30, 1], [10, 40, 1], [50, 20, 0]):
            assert _click(client, image_id, [point]).status_code == 200
        assert len(loads) == 1, "each click read the embedding file again"


def test_a_lone_click_cycles_three_candidates_and_further_clicks_refine_the_last_mask(
        settings, sam_options):
    studio = make_studio(settings, sam_options, None)
    assert studio.sam.model.backend == "onnx"
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(10), "image/png")}).json()["id"]
        first = _click(client, image_id, [[30, 30, 1]])
        assert first.status_code == 200 and first.headers["X-Sam-Candidates"] == "3"
        best = int(first.headers["X-Sam-Candidate"])
        masks = {}
        for k in range(3):
            r = _click(client, image_id, [[30, 30, 1]], candidate=k)
            assert r.status_code == 200 and r.headers["X-Sam-Candidate"] == str(k)
            masks[k] = r.content
        assert masks[best] == first.content                 # the default is one of the three
        assert _click(client, image_id, [[30, 30, 1]], candidate=3).status_code == 422

        # A second click seeded with the first answer's logits: SAM's answer changes with it.
        two = [[30, 30, 1], [5, 5, 0]]
        fresh = _click(client, image_id, two)
        refined = _click(client, image_id, two, refine=first.headers["X-Sam-Token"])
        assert (fresh.headers["X-Sam-Refined"], refined.headers["X-Sam-Refined"]) == ("0", "1")
        assert refined.headers["X-Sam-Candidate"] == "none"
        assert refined.content != fresh.content or refined.headers["X-Sam-Score"] != fresh.headers["X-Sam-Score"]
        unknown = _click(client, image_id, two, refine="no-such-token")
        assert unknown.status_code == 200 and unknown.headers["X-Sam-Refined"] == "0"
        other = client.post("/api/images", files={"file": ("g.png", face_bytes(11), "image/png")}).json()["id"]
        elsewhere = _click(client, other, two, refine=first.headers["X-Sam-Token"])
        assert elsewhere.headers["X-Sam-Refined"] == "0"    # a token is good for its image only


def test_sam2_serves_clicks_through_the_same_api(settings, tmp_path):
    pytest.importorskip("sam2")
    from tests.model.tiny_sam import TINY2_BUILDERS, write_tiny_sam2_checkpoint

    options = ServeOptions(sam_checkpoint=write_tiny_sam2_checkpoint(tmp_path / "t2.pt"),
                           sam_model="tiny2", sam_builders=TINY2_BUILDERS)
    studio = make_studio(settings, options, None)
    calls = _encoder_calls(studio)
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        image_id = client.post("/api/images", files={"file": ("f.png", face_bytes(12, 80), "image/png")}).json()["id"]
        first = _click(client, image_id, [[30, 30, 1]])
        assert first.status_code == 200, first.text
        assert decode_label_png(first.content, 256).shape == (80, 80)
        assert first.headers["X-Sam-Candidates"] == "3"
        refined = _click(client, image_id, [[30, 30, 1], [70, 70, 0]],
                         refine=first.headers["X-Sam-Token"])
        assert refined.status_code == 200 and refined.headers["X-Sam-Refined"] == "1"
        assert client.get("/api/health").json()["sam"] is not None
    assert calls[0] == 1   # embedded once (no worker here), never again for a click


def test_serving_an_image_embeds_it_first_and_the_next_ones_ahead_of_the_rest(settings,
                                                                             sam_options):
    tasks = SyncTasks()
    studio = make_studio(settings, sam_options, tasks)
    tasks.studio = None                     # a worker that has not embedded anything yet
    with LiveServer(app_for(studio)) as url:
        client = httpx.Client(base_url=url, auth=auth("ann"), timeout=60)
        ids = [client.post("/api/images", files={"file": (f"f{i}.png", face_bytes(20 + i, 64),
                                                          "image/png")}).json()["id"]
               for i in range(6)]
        tasks.calls.clear()
        served = client.post("/api/queue/next", json={}).json()["image"]["id"]
        assert served == ids[0]              # unscored images: oldest first
        assert ("urgent embedding", served) in tasks.calls
        assert [i for kind, i in tasks.calls if kind == "ahead embedding"] == ids[1:4]
        studio.sam.embedding(ids[2])         # the worker did one of them meanwhile
        tasks.calls.clear()
        client.post("/api/queue/next", json={"release": served})
        ahead = [i for kind, i in tasks.calls if kind == "ahead embedding"]
        assert ids[2] not in ahead and ahead   # a ready image is not queued again
