"""``serve``: the open (no users) mode, host refusal, --demo, --parser-checkpoint, the prior."""
from __future__ import annotations

import httpx
import pytest

import app as facet_app
from core.errors import FacetError
from db.models import ModelVersion, Revision
from db.settings import Settings
from tests.webapp.helpers import add_users, app_for, face_bytes, make_studio
from tests.webapp.live import LiveServer
from webapp.auth import AccessDenied
from webapp.demo import fill_demo, register_parser, register_prior
from webapp.server import check_host


def test_open_mode_serves_loopback_only_and_refuses_a_public_host(settings):
    studio = make_studio(settings, users=False)
    assert check_host(studio, "127.0.0.1") is True and check_host(studio, "localhost") is True
    with pytest.raises(FacetError, match="refusing to serve on 0.0.0.0 without users"):
        check_host(studio, "0.0.0.0")
    with pytest.raises(AccessDenied, match="only this machine"):
        studio.auth.from_basic(None, "192.168.1.20")
    with LiveServer(app_for(studio)) as url:
        r = httpx.post(url + "/api/images", files={"file": ("f.png", face_bytes(8), "image/png")})
        assert r.status_code == 201                      # local admin, no credentials
        assert httpx.get(url + "/api/export").status_code == 200
    add_users(studio, ["adm"])
    assert check_host(studio, "0.0.0.0") is False       # with users, any host is fine


def test_cli_refuses_a_public_host_without_users(tmp_path, capsys):
    code = facet_app.main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path / "d"),
                           "--port", "1"])
    assert code == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err
    assert facet_app.main(["serve", "--port", "70000", "--data-dir", str(tmp_path / "d")]) == 2


def test_demo_fills_only_an_empty_database(settings, tmp_path):
    studio = make_studio(settings)
    assert fill_demo(studio, 4, size=48) == 4
    assert fill_demo(studio, 4, size=48) == 0
    with studio.session() as session:
        revs = session.query(Revision).all()
        assert len(revs) == 2 and {r.state.value for r in revs} == {"approved"}
    with pytest.raises(FacetError, match="positive"):
        fill_demo(make_studio(Settings.resolve(data_dir=tmp_path / "other", env={})), 0)


def test_parser_checkpoint_is_registered_once_and_activated(settings, tmp_path, tiny_parser):
    studio = make_studio(settings)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"nope")
    with pytest.raises(FacetError):
        register_parser(studio, junk)
    assert "registered tiny.pt as model v1" in register_parser(studio, tiny_parser)
    assert "already has model versions" in register_parser(studio, tiny_parser)
    with studio.session() as session:
        (version,) = session.query(ModelVersion).all()
        assert version.is_active and (studio.settings.data_dir / version.checkpoint_path).is_file()
    assert studio.predictions.active().id == version.id


def test_a_database_without_models_starts_from_the_prior_and_its_labels_fine_tune_it(
        settings, tmp_path, tiny_parser):
    from tests.webapp.helpers import SyncTasks
    from webapp.demo import train_first_model

    tasks = SyncTasks()
    studio = make_studio(settings, tasks=tasks)
    assert "not found; starting without a model" in register_prior(studio, tmp_path / "none.pt")
    assert "prior: registered tiny.pt as model v1" in register_prior(studio, tiny_parser)
    with studio.session() as session:
        (version,) = session.query(ModelVersion).all()
        assert version.is_active and version.note.startswith("face prior")
    fill_demo(studio, 2, size=64)
    assert "training" in train_first_model(studio)          # the demo's labels fine-tune it
    assert [c[0] for c in tasks.calls].count("training") == 1
