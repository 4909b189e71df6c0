"""db/deletion.py: deleting an image leaves no row and no file of it anywhere, only a record;
exports after it do not have it; ids are never reused; orphan files are swept; the
``delete-image`` command refuses without ``--yes``."""
from __future__ import annotations

import csv
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, select, text

from core.imageio import encode_label_png, write_atomic
from db.cache import embedding_path, put_embedding_row, put_prediction
from db.database import downgrade_database, upgrade_database
from db.deletion import (ImageGone, checkpoint_wal, delete_image, last_deletion, list_deletions,
                         remove_files, sweep_orphans)
from db.engine import make_engine, make_session_factory, session_scope
from db.exporter import export_dataset
from db.images import add_image, image_file
from db.models import Base, Deletion, Image, Origin, RevisionState, utcnow
from db.revisions import save_revision
from db.users import create_user
from db.versions import activate, add_version
from tests.app_cli import run_app
from tests.db.conftest import insert_image
from tests.db.io_fixtures import photo_bytes

REPO = Path(__file__).resolve().parents[2]
SAM_KEYS = ("vit_b:aaaaaaaaaaaa", "tiny:bbbbbbbbbbbb")


def _label(value: int, size=(48, 40)) -> bytes:
    return encode_label_png(np.full((size[1], size[0]), value, dtype=np.uint8))


def _embed(session, settings, image_id: int, key: str) -> Path:
    path = embedding_path(settings, key, image_id)
    write_atomic(path, b"not really an npz")
    put_embedding_row(session, image_id, key, path.relative_to(settings.data_dir).as_posix())
    return path


@pytest.fixture()
def two_images(settings, sessions):
    """Images ``a`` (leased, 2 main-line revisions + a conflict draft, 1 prediction, 2 SAM
    embeddings with files) and ``b`` (1 revision, 1 prediction, 1 embedding), both approved."""
    with session_scope(sessions) as s:
        admin = create_user(s, "boss", "boss-pass-1", "admin")
        ann = create_user(s, "ann", "ann-pass-1", "annotator")
        a = add_image(s, settings, photo_bytes(1), "alice-face.jpg", source_k=7).image
        b = add_image(s, settings, photo_bytes(2), "bob-face.jpg", source_k=8).image
        version = add_version(s, "models/v1.pt", {}, {"mean_f1": 0.5})
        activate(s, version.id)
        first = save_revision(s, a.id, _label(1), ann.id, None).revision
        save_revision(s, a.id, _label(2), ann.id, 1, state=RevisionState.approved)
        save_revision(s, a.id, _label(3), ann.id, 1)  # stale base: kept as a conflict draft
        save_revision(s, b.id, _label(4), ann.id, None, state=RevisionState.approved,
                      origin=Origin.imported)
        put_prediction(s, a.id, version.id, _label(5), 0.9)
        put_prediction(s, b.id, version.id, _label(6), 0.1)
        a.lease_user_id, a.lease_until, a.priority = ann.id, utcnow() + timedelta(minutes=5), 0.9
        a_files = [image_file(settings, a)] + [_embed(s, settings, a.id, k) for k in SAM_KEYS]
        b_files = [image_file(settings, b), _embed(s, settings, b.id, SAM_KEYS[0])]
        info = dict(a=a.id, b=b.id, a_k=a.k, b_k=b.k, a_sha=a.sha256, b_sha=b.sha256,
                    admin=admin.id, first=first.id, a_files=a_files, b_files=b_files)
    assert all(p.is_file() for p in info["a_files"] + info["b_files"])
    return info


def _rows_of(sessions, image_id: int) -> dict[str, int]:
    """Rows referring to ``image_id`` in every table that has an ``image_id`` column (and the
    images table itself), found from the live schema so a new table is not forgotten."""
    with session_scope(sessions) as s:
        schema = inspect(s.get_bind())
        counts = {"images": s.scalar(text("SELECT count(*) FROM images WHERE id = :i"), {"i": image_id})}
        for table in schema.get_table_names():
            columns = {c["name"] for c in schema.get_columns(table)}
            if "image_id" in columns and table != "deletions":
                counts[table] = s.scalar(text(f"SELECT count(*) FROM {table} WHERE image_id = :i"),
                                         {"i": image_id})
    return counts


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_delete_removes_every_row_and_file_of_the_image_and_records_who_when_why(
        settings, sessions, two_images, db_backend):
    info = two_images
    assert set(_rows_of(sessions, info["a"])) >= {"images", "revisions", "predictions",
                                                  "sam_embeddings"}
    before = utcnow()
    with session_scope(sessions) as s:
        if db_backend == "sqlite":
            s.execute(text("PRAGMA secure_delete=OFF"))  # as some SQLite builds have it
        pending = delete_image(s, settings, info["a"], info["admin"], "  subject asked  ")
        assert all(p.is_file() for p in info["a_files"])  # nothing leaves disk before the commit
    record = remove_files(settings, pending)

    assert all(n == 0 for n in _rows_of(sessions, info["a"]).values()), _rows_of(sessions, info["a"])
    assert (record.revisions, record.predictions, record.sam_embeddings) == (3, 1, 2)
    assert (record.files, record.files_removed, record.files_failed) == (3, 3, 0)
    assert record.removed_line() == "3 revisions, 1 prediction, 2 SAM embeddings, 3 files"
    assert (record.deleted_by_id, record.deleted_by, record.reason) == (info["admin"], "boss",
                                                                         "subject asked")
    assert before <= record.deleted_at <= utcnow()

    # No file of the image anywhere under the data dir: not its bytes' name, not its id's.
    left = _files_under(settings.data_dir)
    assert not [p for p in left if info["a_sha"] in p.name or p.name == f"{info['a']}.npz"]
    assert not any(p.exists() for p in info["a_files"])
    assert all(p.is_file() for p in info["b_files"])  # the other image is untouched
    assert all(n > 0 for n in _rows_of(sessions, info["b"]).values())

    with session_scope(sessions) as s:
        stored = s.scalars(select(Deletion)).all()
        assert [(d.image_id, d.deleted_by_id) for d in stored] == [(info["a"], info["admin"])]
        values = [str(v) for d in stored for v in vars(d).values()]
        assert not [v for v in values if info["a_sha"] in v or "alice" in v]  # no name, no hash
        assert last_deletion(s, info["a"]) == pending.record
        assert [d.id for d in list_deletions(s)] == [record.id]

    # SQLite: the freed pages are zeroed and the log emptied: neither the file name nor the
    # hash is left in the database files. (PostgreSQL keeps dead rows until VACUUM.)
    with session_scope(sessions) as s:
        assert checkpoint_wal(s)
    if db_backend != "sqlite":
        return
    raw_bytes = b"".join(p.read_bytes() for p in settings.data_dir.glob("facet.db*"))
    assert b"alice-face" not in raw_bytes and info["a_sha"].encode() not in raw_bytes
    assert b"bob-face" in raw_bytes


def test_an_export_after_the_delete_does_not_contain_the_image(settings, sessions, two_images):
    info = two_images
    with session_scope(sessions) as s:
        pending = delete_image(s, settings, info["a"], None)
    remove_files(settings, pending)
    out = settings.data_dir.parent / "export"
    with session_scope(sessions) as s:
        report = export_dataset(s, settings, out, status="any")
    assert report.images == 1
    names = [p.relative_to(out).as_posix() for p in _files_under(out)]
    assert f"CelebA-HQ-img/{info['b_k']}.jpg" in names
    assert not [n for n in names if Path(n).stem.lstrip("0").split("_")[0] == str(info["a_k"])]
    with open(out / "mapping.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(int(r["k"]), r["sha256"]) for r in rows] == [(info["b_k"], info["b_sha"])]
    assert info["a_sha"] not in (out / "mapping.csv").read_text()
    assert str(info["a_k"]) not in "".join((out / f"{s}.txt").read_text()
                                           for s in ("train", "val", "test"))


def test_a_missing_or_already_deleted_image_changes_nothing(settings, sessions, two_images):
    info = two_images
    with pytest.raises(ImageGone, match="no image with id 999$"):
        with session_scope(sessions) as s:
            delete_image(s, settings, 999, None)
    with session_scope(sessions) as s:
        remove_files(settings, delete_image(s, settings, info["a"], info["admin"]))
    with pytest.raises(ImageGone, match=r"no image with id \d+ \(deleted .* UTC by boss\)"):
        with session_scope(sessions) as s:
            delete_image(s, settings, info["a"], info["admin"])
    with session_scope(sessions) as s:
        assert s.scalar(select(Deletion.id).where(Deletion.image_id == 999)) is None
        assert len(s.scalars(select(Deletion)).all()) == 1


def test_a_failed_transaction_keeps_the_rows_and_the_files(settings, sessions, two_images):
    info = two_images
    with pytest.raises(RuntimeError):
        with session_scope(sessions) as s:
            delete_image(s, settings, info["a"], info["admin"])
            raise RuntimeError("crash before the commit")
    assert all(n > 0 for n in _rows_of(sessions, info["a"]).values())
    assert all(p.is_file() for p in info["a_files"])
    with session_scope(sessions) as s:
        assert s.scalars(select(Deletion)).all() == []


def test_a_deleted_images_id_is_never_given_to_a_new_image(settings, sessions, two_images):
    info = two_images
    top = max(info["a"], info["b"])
    with session_scope(sessions) as s:
        remove_files(settings, delete_image(s, settings, top, None))
    with session_scope(sessions) as s:
        new = add_image(s, settings, photo_bytes(3), "carol.jpg").image
        assert new.id > top


def test_sweep_removes_files_left_by_an_interrupted_delete_and_spares_young_ones(
        settings, sessions, two_images):
    info = two_images
    with session_scope(sessions) as s:
        delete_image(s, settings, info["a"], None)  # committed; the process dies before remove_files
    old = 1_000_000.0
    for path in info["a_files"]:
        os.utime(path, (old, old))
    stray = embedding_path(settings, SAM_KEYS[1], info["a"])
    assert stray.is_file()
    young = settings.images_dir / ("f" * 64 + ".jpg")  # an import writing, its row not committed
    young.write_bytes(photo_bytes(9))
    tmp = settings.images_dir / ".x.jpg.abc.tmp"       # an interrupted atomic write
    tmp.write_bytes(b"partial")
    os.utime(tmp, (old, old))
    now = old + 48 * 3600
    os.utime(young, (now - 60, now - 60))

    with session_scope(sessions) as s:
        dry = sweep_orphans(s, settings, dry_run=True, now=now)
    assert set(dry.orphans) == set(info["a_files"]) | {tmp} and dry.young == 1
    assert all(p.exists() for p in dry.orphans) and "would remove 4" in dry.line()
    with session_scope(sessions) as s:
        done = sweep_orphans(s, settings, now=now)
    assert set(done.orphans) == set(dry.orphans) and not any(p.exists() for p in done.orphans)
    assert young.is_file() and all(p.is_file() for p in info["b_files"])


def test_migration_adds_and_drops_the_deletions_table_and_keeps_ids_unique(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade_database(url, "0002_queue_heartbeat")
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        for k in range(3):
            insert_image(s, k)
    engine.dispose()
    upgrade_database(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        assert s.scalars(select(Image.id).order_by(Image.id)).all() == [1, 2, 3]
        s.add(Deletion(image_id=3, revisions=0, predictions=0, sam_embeddings=0, files=0))
        s.execute(text("DELETE FROM images WHERE id = 3"))
    with session_scope(factory) as s:
        assert insert_image(s, 10).id == 4  # 3 is not reused
    engine.dispose()
    downgrade_database(url, "0002_queue_heartbeat")
    with sqlite3.connect(tmp_path / "m.db") as raw:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "deletions" not in tables
        assert [r[0] for r in raw.execute("SELECT id FROM images ORDER BY id")] == [1, 2, 4]
    upgrade_database(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        s.execute(text("DELETE FROM images WHERE id = 4"))
    with session_scope(make_session_factory(engine)) as s:
        assert insert_image(s, 11).id == 5
        assert set(Base.metadata.tables) <= set(inspect(s.get_bind()).get_table_names())
    engine.dispose()


@pytest.mark.slow
def test_the_delete_image_command_refuses_without_yes_and_prints_what_went(
        settings, sessions, two_images):
    info = two_images
    refused = run_app("delete-image", str(info["a"]), settings=settings)
    assert refused.returncode == 2 and refused.stderr.startswith("error: ")
    assert "without --yes" in refused.stderr and refused.stderr.count("\n") == 1
    assert all(n > 0 for n in _rows_of(sessions, info["a"]).values())
    assert all(p.is_file() for p in info["a_files"])

    done = run_app("delete-image", str(info["a"]), "--reason", "request #12", "--yes",
                  settings=settings)
    assert done.returncode == 0, done.stderr
    assert (f"deleted image {info['a']} (deletion record 1): removed 3 revisions, 1 prediction, "
            "2 SAM embeddings, 3 files") in done.stdout
    assert "checkpoints" in done.stdout
    assert all(n == 0 for n in _rows_of(sessions, info["a"]).values())
    assert not any(p.exists() for p in info["a_files"])
    with session_scope(sessions) as s:
        record = last_deletion(s, info["a"])
        assert (record.deleted_by_id, record.reason) == (None, "request #12")

    again = run_app("delete-image", str(info["a"]), "--yes", settings=settings)
    assert again.returncode == 2 and f"no image with id {info['a']} (deleted" in again.stderr
    swept = run_app("sweep-files", settings=settings)
    assert swept.returncode == 0 and "would remove 0 orphan file(s)" in swept.stdout
