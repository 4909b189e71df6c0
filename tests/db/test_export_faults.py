"""db/exporter.py on a full disk (``tests/disk_full.py``: a real tmpfs where it may be mounted,
else ENOSPC injected at the write): a clear one-line error, nothing half-written left at or
beside the output (an earlier zip there stays as it was), and a later export succeeds. Through
the library, the ``export`` command and ``GET /api/export``."""
from __future__ import annotations

import tempfile
import zipfile

import pytest

from core.errors import FacetError
from db.engine import session_scope
from db.exporter import export_dataset
from db.importer import import_path
from tests.db.io_fixtures import write_tree
from tests.disk_full import SmallDisk

KS = [0, 1, 2000]


@pytest.fixture
def disk(tmp_path, monkeypatch):
    with SmallDisk(tmp_path / "disk", monkeypatch) as small:
        yield small


@pytest.fixture
def labelled(settings, sessions, tmp_path):
    """Three labelled images in the database; the bytes a folder export of them takes."""
    write_tree(tmp_path / "tree", KS)
    with session_scope(sessions) as s:
        import_path(s, settings, tmp_path / "tree")
    do_export(sessions, settings, tmp_path / "probe")
    return sum(p.stat().st_size for p in (tmp_path / "probe").rglob("*") if p.is_file())


def do_export(sessions, settings, out, **kw):
    with session_scope(sessions) as s:
        return export_dataset(s, settings, out, **kw)


def test_a_zip_export_on_a_full_disk_fails_and_keeps_the_previous_zip(settings, sessions, disk,
                                                                     labelled):
    out = disk.folder / "celebamask.zip"
    do_export(sessions, settings, out, as_zip=True)
    before = out.read_bytes()
    disk.fill_up(len(before) // 2)
    with pytest.raises(FacetError, match="no space left on device") as err:
        do_export(sessions, settings, out, as_zip=True)
    assert str(err.value).startswith(f"cannot write the export {out}: ")
    assert [p.name for p in disk.folder.iterdir()] == ["celebamask.zip"]  # no .partial left
    assert out.read_bytes() == before

    disk.free_up()
    assert do_export(sessions, settings, out, as_zip=True).images == len(KS)
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None and "mapping.csv" in zf.namelist()


def test_a_folder_export_on_a_full_disk_leaves_no_folder(settings, sessions, disk, labelled):
    out = disk.folder / "tree"
    disk.fill_up(labelled // 2)
    with pytest.raises(FacetError, match="no space left on device"):
        do_export(sessions, settings, out)
    assert list(disk.folder.iterdir()) == []  # neither the tree nor its staging folder

    disk.free_up()
    assert do_export(sessions, settings, out).images == len(KS)
    assert (out / "mapping.csv").is_file()


def test_the_export_command_on_a_full_disk_says_why_in_one_line(settings, sessions, disk,
                                                                labelled, capsys, monkeypatch):
    import app as facet_app

    monkeypatch.setenv("FACET_DATABASE_URL", settings.database_url)
    out = disk.folder / "out.zip"
    disk.fill_up(labelled // 2)
    code = facet_app.main(["export", str(out), "--zip", "--data-dir", str(settings.data_dir)])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert last == (f"error: cannot write the export {out}: no space left on device; "
                    "nothing was exported")
    assert list(disk.folder.iterdir()) == []


def test_the_api_export_on_a_full_disk_answers_the_reason(settings, sessions, disk, labelled,
                                                          monkeypatch):
    from tests.webapp.helpers import app_for, basic_client, make_studio

    monkeypatch.setattr(tempfile, "tempdir", str(disk.folder))  # where the API stages the zip
    client = basic_client(app_for(make_studio(settings)), "rev")
    disk.fill_up(labelled // 2)
    r = client.get("/api/export", params={"status": "any"})
    assert r.status_code >= 400 and "no space left on device" in r.json()["detail"], r.text
    assert list(disk.folder.iterdir()) == []

    disk.free_up()
    r = client.get("/api/export", params={"status": "any"})
    assert r.status_code == 200
    assert list(disk.folder.iterdir()) == []  # the served zip is removed after sending
