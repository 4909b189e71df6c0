"""Deleting an image (admins) over the API and from the Dataset tab: roles, what goes (rows in
every table, the image file, the SAM embedding file), the record, what stays (checkpoints)."""
from __future__ import annotations

import io
import zipfile
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest

from core.imageio import encode_label_png
from db.annotation_queue import queue_counts
from db.deletion import last_deletion
from db.models import Image, RevisionState
from tests.db.test_deletion import _rows_of
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
from tests.webapp.helpers import SyncTasks, app_for, auth, face_bytes, make_studio, publish_version
from tests.webapp.live import LiveServer
from webapp import actions
from webapp.actions import NotFound
from webapp.auth import AccessDenied
from webapp.options import ServeOptions
from webapp.ui.dataset import DatasetView


@pytest.fixture()
def studio(settings, tmp_path, tiny_parser):
    """A studio with a tiny SAM, a synchronous worker and an active tiny parser: an upload
    gets a prediction row and an embedding file at once."""
    ckpt = write_tiny_checkpoint(tmp_path / "tiny_sam.pth")
    options = ServeOptions(sam_checkpoint=ckpt, sam_model="tiny", sam_builders=TINY_BUILDERS)
    studio = make_studio(settings, options, SyncTasks())
    publish_version(studio, tiny_parser, "v1.pt", {"mean_f1": 0.5})
    return studio


def _add(studio, seed: int, name: str, approve: bool = True) -> int:
    """An uploaded image, labelled by ann and approved by rev (``approve`` False: unlabelled)."""
    added = actions.add_image(studio, _actor(studio, "ann"), face_bytes(seed), name)
    if approve:
        labels = np.zeros((64, 64), np.uint8)
        labels[10:30, 10:30] = 1
        actions.save_labels(studio, _actor(studio, "ann"), added.id, labels, None,
                            RevisionState.submitted)
        actions.decide(studio, _actor(studio, "rev"), added.id, True)
    return added.id


def _actor(studio, name):
    return studio.auth.from_username(name, "127.0.0.1")


def _files_of(studio, image_id: int, sha: str) -> list:
    return [p for p in studio.settings.data_dir.rglob("*")
            if p.is_file() and (sha in p.name or p.name == f"{image_id}.npz")]


def _sha(studio, image_id: int) -> str:
    with studio.session() as session:
        return session.get(Image, image_id).sha256


def test_admins_delete_over_the_api_others_get_403_and_a_second_delete_404(studio):
    gone, kept = _add(studio, 1, "alice.png"), _add(studio, 2, "bob.png")
    sha = _sha(studio, gone)
    actions.next_image(studio, _actor(studio, "ann"))  # a lease on some image
    with studio.session() as session:
        session.get(Image, gone).lease_user_id = _actor(studio, "ann").user_id
    before = _rows_of(studio.sessions, gone)
    assert before["predictions"] == before["sam_embeddings"] == 1 and before["revisions"] == 2
    assert len(_files_of(studio, gone, sha)) == 2  # the image and its SAM embedding

    with LiveServer(app_for(studio)) as url:
        def client(name):
            return httpx.Client(base_url=url, auth=auth(name), timeout=60)

        for name in ("ann", "rev"):
            r = client(name).delete(f"/api/images/{gone}")
            assert r.status_code == 403 and "needs the admin role" in r.json()["detail"]
        assert _rows_of(studio.sessions, gone) == before
        assert client("adm").delete(f"/api/images/{gone}", params={"reason": "x" * 1001}
                                    ).status_code == 422

        r = client("adm").request("DELETE", f"/api/images/{gone}",
                                  json={"reason": "erasure request 12"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["image_id"], body["deleted_by"], body["reason"]) == (
            gone, "adm", "erasure request 12")
        assert (body["revisions"], body["predictions"], body["sam_embeddings"]) == (2, 1, 1)
        assert (body["files"], body["files_removed"], body["files_failed"]) == (2, 2, 0)
        assert body["removed"] == "2 revisions, 1 prediction, 1 SAM embedding, 2 files"
        assert "checkpoints" in body["kept"] and body["deleted_at"]

        again = client("adm").delete(f"/api/images/{gone}")
        assert again.status_code == 404 and "deleted" in again.json()["detail"]
        assert client("adm").delete("/api/images/999").status_code == 404
        assert client("ann").get(f"/api/images/{gone}/image").status_code == 404
        listed = client("ann").get("/api/images")  # (whatever the listing's shape)
        assert listed.status_code == 200 and "bob.png" in listed.text
        assert "alice.png" not in listed.text
        export = client("rev").get("/api/export", params={"status": "any"})
        assert export.status_code == 200
        with zipfile.ZipFile(io.BytesIO(export.content)) as zf:
            names = zf.namelist()
            mapping = zf.read("mapping.csv").decode()
        assert sum(n.startswith("CelebA-HQ-img/") for n in names) == 1
        assert sha not in mapping and "alice" not in mapping and "bob.png" in mapping

    assert all(n == 0 for n in _rows_of(studio.sessions, gone).values())
    assert _files_of(studio, gone, sha) == []
    assert all(n > 0 for n in _rows_of(studio.sessions, kept).values())
    assert (studio.settings.models_dir / "v1.pt").is_file()  # weights stay
    with studio.session() as session:
        record = last_deletion(session, gone)
    assert record.deleted_by_id == _actor(studio, "adm").user_id


def test_the_use_case_needs_the_admin_role_and_frees_the_queue(studio):
    first, second = _add(studio, 3, "a.png", approve=False), _add(studio, 4, "b.png", False)
    leased = actions.next_image(studio, _actor(studio, "ann"))
    first, second = leased.image_id, ({first, second} - {leased.image_id}).pop()
    with studio.session() as session:
        assert queue_counts(session)["leased"] == 1
    with pytest.raises(AccessDenied, match="needs the admin role"):
        actions.delete_image(studio, _actor(studio, "rev"), first)
    record = actions.delete_image(studio, None, first)  # the studio itself / the command line
    assert record.deleted_by is None and record.files_removed == 2
    with pytest.raises(NotFound, match=f"no image with id {first}"):
        actions.delete_image(studio, _actor(studio, "adm"), first)
    with pytest.raises(NotFound):
        actions.open_image(studio, _actor(studio, "ann"), first)
    with pytest.raises(NotFound):
        actions.save_labels(studio, _actor(studio, "ann"), first,
                            encode_label_png(np.zeros((64, 64), np.uint8)), None)
    with studio.session() as session:
        assert [i.id for i in session.query(Image)] == [second]
        assert queue_counts(session) == {"needs_work": 1, "leased": 0, "available": 1,
                                         "submitted": 0, "approved": 0}
    assert actions.next_image(studio, _actor(studio, "ann")).image_id == second


def _req(name: str | None):
    return SimpleNamespace(username=name, client=SimpleNamespace(host="127.0.0.1"))


def test_the_dataset_tab_deletes_for_admins_after_the_confirmation_only(studio):
    image_id = _add(studio, 5, "c.png")
    with gr.Blocks():
        view = DatasetView(studio)
        view.build()

    assert view.on_refresh(_req("ann"))[view.delete_btn]["interactive"] is False
    assert view.on_refresh(_req("adm"))[view.delete_btn]["interactive"] is True

    denied = view.on_delete(str(image_id), "", True, _req("rev"))
    assert "needs the admin role" in denied[view.delete_status]
    unticked = view.on_delete(str(image_id), "", False, _req("adm"))
    assert "Tick the confirmation box" in unticked[view.delete_status]
    assert "a number" in view.on_delete(" x ", "", True, _req("adm"))[view.delete_status]
    assert _rows_of(studio.sessions, image_id)["images"] == 1

    done = view.on_delete(f" {image_id} ", "asked by the subject", True, _req("adm"))
    status = done[view.delete_status]
    assert status.startswith("✓ Deleted image") and "by adm" in status
    assert "1 SAM embedding, 2 files" in status and "checkpoints" in status
    assert done[view.delete_confirm] is False and done[view.delete_id] == ""
    assert done[view.images] == [] and "**0** images" in done[view.counts]
    assert all(n == 0 for n in _rows_of(studio.sessions, image_id).values())

    missing = view.on_delete(str(image_id), "", True, _req("adm"))
    assert f"no image with id {image_id} (deleted" in missing[view.delete_status]
