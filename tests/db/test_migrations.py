"""Migrations: up -> down -> up keeps every row, `alembic check` is clean, open_database
upgrades fresh, older and refuses foreign databases."""
from __future__ import annotations

import sqlite3
import uuid
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from core.errors import FacetError
from db.database import (alembic_config, current_revision, downgrade_database, head_revision,
                         open_database, upgrade_database)
from db.engine import make_engine, make_session_factory, session_scope
from db.models import (Job, JobPoint, ModelVersion, Origin, Prediction, Revision, RevisionState,
                       Role, SamEmbedding, User)
from db.settings import Settings
from tests.db.conftest import insert_image, label_png

REPO = Path(__file__).resolve().parents[2]
FIRST = "0001_initial"
TABLES = ("users", "images", "revisions", "model_versions", "jobs", "job_points",
          "predictions", "sam_embeddings")


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'm.db'}"


@pytest.fixture
def empty_url(tmp_path: Path, db_backend: str, request):
    """An empty database: a SQLite file, or a new database on the suite's PostgreSQL server."""
    if db_backend == "sqlite":
        yield _url(tmp_path)
        return
    server = request.getfixturevalue("postgres_server")
    name = f"m_{uuid.uuid4().hex[:16]}"
    try:
        yield server.create_database(name)
    finally:
        server.drop_database(name)


def _fill(url: str) -> None:
    """Rows in every table, with the foreign keys that cascade (images -> revisions, jobs ->
    job_points) and that set null (jobs -> model_versions) on a parent rebuild."""
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        user = User(name="ann", password_hash="scrypt$x", role=Role.annotator)
        s.add(user)
        s.flush()
        images = [insert_image(s, k, priority=0.1 * k) for k in (0, 1999, 2000)]
        first = Revision(image_id=images[0].id, revision=1, author_id=user.id,
                         state=RevisionState.draft, origin=Origin.human, label_png=label_png(1))
        s.add(first)
        s.flush()
        s.add(Revision(image_id=images[0].id, revision=2, parent_id=first.id, author_id=user.id,
                       state=RevisionState.submitted, origin=Origin.human,
                       label_png=label_png(2), comment="looks fine"))
        s.add(Revision(image_id=images[1].id, revision=None, parent_id=None, author_id=user.id,
                       state=RevisionState.draft, origin=Origin.model, label_png=label_png(3)))
        job = Job(kind="train", params={"steps": 5}, created_by_id=user.id)
        s.add(job)
        s.flush()
        s.add_all([JobPoint(job_id=job.id, step=i, values={"loss": 1.0 / (i + 1)}) for i in range(3)])
        version = ModelVersion(checkpoint_path="models/v1.pt", config={"backbone": "resnet18"},
                               metrics={"mean_f1": 0.5}, job_id=job.id, num_labels=2,
                               is_active=True)
        s.add(version)
        s.flush()
        images[2].scored_by_id = version.id
        s.add(Prediction(image_id=images[2].id, model_version_id=version.id,
                         label_png=label_png(4), uncertainty=0.25))
        s.add(SamEmbedding(image_id=images[2].id, sam_model="vit_b:abc", path="cache/2.npy"))
    engine.dispose()


def _snapshot(url: str) -> dict[str, list[dict]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        snap = {t: [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {t} ORDER BY id"))]
                for t in TABLES}
    engine.dispose()
    return snap


def _common(rows: list[dict], other: list[dict]) -> list[dict]:
    keys = set(rows[0]) & set(other[0]) if rows and other else set()
    return [{k: r[k] for k in sorted(keys)} for r in rows]


def test_upgrade_downgrade_upgrade_keeps_every_row(empty_url, db_backend, tmp_path):
    url = empty_url
    upgrade_database(url)
    _fill(url)
    before = _snapshot(url)
    assert all(before[t] for t in TABLES)

    downgrade_database(url, FIRST)
    assert current_revision(url) == FIRST
    down = _snapshot(url)
    assert "updated_at" not in down["jobs"][0]
    for t in TABLES:
        assert _common(down[t], before[t]) == _common(before[t], down[t]), t

    upgrade_database(url)
    assert current_revision(url) == head_revision()
    again = _snapshot(url)
    for t in TABLES:
        assert _common(again[t], before[t]) == _common(before[t], again[t]), t
    assert again["model_versions"][0]["job_id"] == before["jobs"][0]["id"]
    if db_backend == "sqlite":
        with sqlite3.connect(tmp_path / "m.db") as raw:
            assert raw.execute("PRAGMA foreign_key_check").fetchall() == []


def test_alembic_check_finds_no_difference_between_models_and_migrations(empty_url):
    url = empty_url
    upgrade_database(url)
    command.check(alembic_config(url))  # raises AutogenerateDiffsDetected on any difference


def test_alembic_cli_uses_the_url_given_with_x(tmp_path):
    db = tmp_path / "cli.db"
    run = subprocess.run([sys.executable, "-m", "alembic", "-x", f"url=sqlite:///{db}",
                          "upgrade", "head"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert current_revision(f"sqlite:///{db}") == head_revision()
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_database_creates_the_data_dir_and_a_fresh_database(tmp_path):
    settings = Settings.resolve(data_dir=tmp_path / "new" / "data", env={})
    sessions = open_database(settings)
    assert (settings.data_dir / "facet.db").is_file()
    assert current_revision(settings.database_url) == head_revision()
    with sessions() as s:
        assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
    sessions.kw["bind"].dispose()


def test_open_database_upgrades_an_older_database_and_keeps_its_rows(tmp_path):
    settings = Settings.resolve(data_dir=tmp_path, env={})
    upgrade_database(settings.database_url, FIRST)
    with sqlite3.connect(tmp_path / "facet.db") as raw:  # rows as the old schema had them
        raw.execute("INSERT INTO jobs (kind, state, progress, params, created_at) "
                    "VALUES ('train', 'running', 0.5, '{}', '2026-01-02 03:04:05')")
        raw.execute("INSERT INTO job_points (job_id, step, \"values\", created_at) "
                    "VALUES (1, 7, '{\"loss\": 0.5}', '2026-01-02 03:04:06')")
    sessions = open_database(settings)
    assert current_revision(settings.database_url) == head_revision()
    with sessions() as s:
        job = s.get(Job, 1)
        assert (job.kind, job.progress, job.updated_at) == ("train", 0.5, None)
        assert [p.step for p in job.points] == [7]
    sessions.kw["bind"].dispose()


def test_a_database_not_made_by_facet_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(FacetError, match="no Facet migration history"):
        open_database(Settings.resolve(data_dir=tmp_path, database_url=f"sqlite:///{path}", env={}))
    with sqlite3.connect(path) as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"images"}


def test_a_database_from_a_newer_facet_is_refused(tmp_path):
    settings = Settings.resolve(data_dir=tmp_path, env={})
    upgrade_database(settings.database_url)
    with sqlite3.connect(tmp_path / "facet.db") as raw:
        raw.execute("UPDATE alembic_version SET version_num = '9999_future'")
    with pytest.raises(FacetError, match="9999_future"):
        open_database(settings)


def test_processes_opening_a_fresh_database_together_migrate_once(tmp_path):
    """Web server, worker and CLI may start at the same moment on a new data dir."""
    code = ("import sys; from db.database import open_database; from db.settings import Settings;"
            "open_database(Settings.resolve(data_dir=sys.argv[1], env={}))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "data")], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    assert current_revision(f"sqlite:///{tmp_path / 'data' / 'facet.db'}") == head_revision()
