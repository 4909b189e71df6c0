"""db/archive.py limits on a whole archive (member count, total uncompressed size, declared and
while extracting): a zip over them is refused with one clear error and imports nothing."""
from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from db.archive import (MAX_MEMBERS, MAX_TOTAL_BYTES, ArchiveTooLarge, _copy_member,
                        extract_into, extracted_zip)
from db.engine import session_scope
from db.importer import import_path
from db.models import Image
from tests.db.io_fixtures import photo_bytes


def _zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _images(sessions) -> int:
    with session_scope(sessions) as s:
        return s.scalar(select(func.count(Image.id)))


def _scratch_is_empty(settings) -> bool:
    tmp = settings.data_dir / "tmp"
    return not tmp.exists() or not any(tmp.iterdir())


def test_defaults_are_sensible():
    assert MAX_MEMBERS == 200_000 and MAX_TOTAL_BYTES == 16 * 2**30


def test_too_many_members_imports_nothing(settings, sessions, tmp_path):
    archive = _zip(tmp_path / "many.zip", [(f"f{i}.png", photo_bytes(i)) for i in range(4)])
    with session_scope(sessions) as s:
        with pytest.raises(ArchiveTooLarge, match=r"many\.zip: .*nothing imported: it has 4 "
                                                  r"members \(limit 3\)"):
            import_path(s, settings, archive, max_members=3)
    assert _images(sessions) == 0 and _scratch_is_empty(settings)
    with session_scope(sessions) as s:
        assert import_path(s, settings, archive, max_members=4).imported == 4


def test_declared_total_over_the_cap_imports_nothing(settings, sessions, tmp_path):
    members = [(f"f{i}.png", photo_bytes(i)) for i in range(3)]
    declared = sum(len(data) for _, data in members)
    archive = _zip(tmp_path / "big.zip", members)
    with session_scope(sessions) as s:
        with pytest.raises(ArchiveTooLarge, match=f"declares {declared} uncompressed bytes "
                                                  f"\\(limit {declared - 1}\\)"):
            import_path(s, settings, archive, max_total=declared - 1)
    assert _images(sessions) == 0 and _scratch_is_empty(settings)
    with session_scope(sessions) as s:
        assert import_path(s, settings, archive, max_total=declared).imported == 3


def test_the_bytes_written_are_counted_against_the_cap(tmp_path):
    archive = _zip(tmp_path / "a.zip", [("a.bin", b"x" * 100)])
    with zipfile.ZipFile(archive) as zf:
        with pytest.raises(ArchiveTooLarge, match="expands past its size limit"):
            _copy_member(zf, zf.getinfo("a.bin"), tmp_path / "a.bin", budget=99)
        assert not (tmp_path / "a.bin").exists()
        assert _copy_member(zf, zf.getinfo("a.bin"), tmp_path / "b.bin", budget=100) == 100


def _lying_zip(path: Path, real: bytes, declared: int) -> Path:
    """A zip whose one member ``liar.bin`` holds ``real`` but whose headers say ``declared``
    uncompressed bytes (local header and central directory both patched)."""
    _zip(path, [("liar.bin", real)])
    raw = bytearray(path.read_bytes())
    local = raw.index(b"PK\x03\x04")
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, declared)
    struct.pack_into("<I", raw, central + 24, declared)
    path.write_bytes(bytes(raw))
    return path


def test_a_zip_lying_about_its_sizes_never_writes_more_than_it_declares(settings, sessions,
                                                                        tmp_path):
    archive = _lying_zip(tmp_path / "liar.zip", b"A" * 200_000, declared=100)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("liar.bin").file_size == 100          # the lie is what zipfile sees
    root = tmp_path / "root"
    root.mkdir()
    # the declared 100 bytes pass a 1000-byte cap, the real 200 kB would not
    refused = extract_into(archive, root, max_total=1000, whole=True)
    assert [r.name for r in refused] == ["liar.bin"]
    assert "corrupt member" in refused[0].reason or "declared size" in refused[0].reason
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 100
    with session_scope(sessions) as s:
        report = import_path(s, settings, archive, max_total=1000)
    assert report.imported == 0 and [name for name, _ in report.bad] == ["liar.bin"]
    assert _images(sessions) == 0 and _scratch_is_empty(settings)


def test_extracted_zip_removes_its_scratch_folder_when_refusing(tmp_path):
    archive = _zip(tmp_path / "a.zip", [("a.bin", b"x" * 10), ("b.bin", b"y" * 10)])
    scratch = tmp_path / "scratch"
    with pytest.raises(ArchiveTooLarge):
        with extracted_zip(archive, scratch, max_total=19):
            pytest.fail("the body must not run")
    assert list(scratch.iterdir()) == []
