"""db/importer.py + db/archive.py: folders, CelebAMask-HQ trees and zips, with bad files named."""
from __future__ import annotations

import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from core.errors import FacetError
from core.imageio import decode_label_png
from db.archive import extract_into
from db.engine import session_scope
from db.importer import import_path
from db.models import Image, Origin, Revision, RevisionState
from tests.app_cli import cli_env
from tests.db.io_fixtures import (face_masks, g_mask_merge, photo_bytes, png_bytes,
                                  write_broken_folder, write_tree)

REPO = Path(__file__).resolve().parents[2]


def run_import(sessions, settings, path, **kw):
    with session_scope(sessions) as s:
        return import_path(s, settings, path, **kw)


def label_maps(sessions) -> dict[int, np.ndarray]:
    """``k → label map`` of the imported revision of every labelled image."""
    with session_scope(sessions) as s:
        rows = s.execute(select(Image.k, Revision).join(Revision, Revision.image_id == Image.id))
        return {k: decode_label_png(rev.label_png, 19, (512, 512)) for k, rev in rows}


def counts(sessions) -> tuple[int, int]:
    with session_scope(sessions) as s:
        return (s.scalar(select(func.count(Image.id))), s.scalar(select(func.count(Revision.id))))


def test_broken_folder_lands_one_image_and_names_every_bad_file(settings, sessions, tmp_path):
    expected = write_broken_folder(tmp_path / "in")
    report = run_import(sessions, settings, tmp_path / "in")
    assert report.imported == 1 and report.with_labels == 0
    reasons = dict(report.bad)
    assert set(reasons) == set(expected)
    for name, word in expected.items():
        assert word in reasons[name], (name, reasons[name])
    assert counts(sessions) == (1, 0)
    assert len(list(settings.images_dir.iterdir())) == 1
    lines = report.lines()
    assert lines[0] == "imported 1 images (0 with labels), skipped 0 duplicates, 4 bad files"
    assert report.exit_code == 0


def test_cli_import_prints_summary_and_every_bad_file(settings, tmp_path):
    expected = write_broken_folder(tmp_path / "in")
    env = cli_env(settings)
    proc = subprocess.run([sys.executable, "app.py", "import", str(tmp_path / "in")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 images (0 with labels), skipped 0 duplicates, 4 bad files" in proc.stdout
    for name, word in expected.items():
        line = next(l for l in proc.stdout.splitlines() if l.startswith(f"  {name}: "))
        assert word in line
    bad_only = tmp_path / "bad"
    bad_only.mkdir()
    (bad_only / "x.png").write_bytes(b"")
    proc = subprocess.run([sys.executable, "app.py", "import", str(bad_only)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "  x.png: empty file" in proc.stdout


def test_every_file_bad_gives_exit_code_2(settings, sessions, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_text("nope")
    (tmp_path / "in" / "readme.txt").write_text("nope")
    report = run_import(sessions, settings, tmp_path / "in")
    assert report.exit_code == 2
    assert "unsupported file type '.txt'" in dict(report.bad)["readme.txt"]
    assert counts(sessions) == (0, 0)


def test_duplicates_are_skipped_and_reported(settings, sessions, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(photo_bytes(1))
    (folder / "sub" / "a-again.jpg").write_bytes(photo_bytes(1))
    (folder / "b.png").write_bytes(photo_bytes(2, fmt="PNG"))
    first = run_import(sessions, settings, folder)
    assert (first.imported, first.duplicates) == (2, ["sub/a-again.jpg"])
    again = run_import(sessions, settings, folder)
    assert again.imported == 0 and sorted(again.duplicates) == ["a.jpg", "b.png", "sub/a-again.jpg"]
    assert again.lines()[0] == "imported 0 images (0 with labels), skipped 3 duplicates, 0 bad files"
    assert again.exit_code == 0
    with session_scope(sessions) as s:
        rows = s.execute(select(Image.k, Image.source_name, Image.label_width)).all()
        assert sorted(rows) == [(0, "a.jpg", 48), (1, "b.png", 48)]


def test_tree_import_keeps_ids_and_merges_like_g_mask(settings, sessions, tmp_path):
    expected = write_tree(tmp_path / "tree", [0, 1999, 2000, 29999])
    report = run_import(sessions, settings, tmp_path / "tree")
    assert (report.imported, report.with_labels, report.bad) == (4, 4, [])
    got = label_maps(sessions)
    assert sorted(got) == [0, 1999, 2000, 29999]
    for k, want in expected.items():
        assert np.array_equal(got[k], want), k
    assert (got[0] == 16).any()  # the thin necklace survives where the neck has a gap
    with session_scope(sessions) as s:
        img = s.scalar(select(Image).where(Image.k == 2000))
        rev = s.scalar(select(Revision).where(Revision.image_id == img.id))
        assert (img.source_k, img.label_width, img.label_height) == (2000, 512, 512)
        assert img.source_name == "CelebA-HQ-img/2000.jpg"
        assert (rev.revision, rev.state, rev.origin, rev.author_id) == (
            1, RevisionState.approved, Origin.imported, None)


def test_merged_only_tree(settings, sessions, tmp_path):
    expected = write_tree(tmp_path / "tree", [3, 4000], merged_only=True)
    report = run_import(sessions, settings, tmp_path / "tree")
    assert (report.imported, report.with_labels, report.bad) == (2, 2, [])
    got = label_maps(sessions)
    assert all(np.array_equal(got[k], expected[k]) for k in (3, 4000))


def test_bad_masks_are_named_and_their_samples_land_nothing(settings, sessions, tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, [0, 1, 2, 3])
    anno = tree / "CelebAMask-HQ-mask-anno" / "0"
    (anno / "00001_hair.png").write_bytes(png_bytes(np.full((256, 256), 255, np.uint8)))
    (anno / "00002_beard.png").write_bytes(png_bytes(np.full((512, 512), 255, np.uint8)))
    (anno / "00003_nose.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (anno / "00009_skin.png").write_bytes(png_bytes(np.zeros((512, 512), np.uint8)))  # no image 9
    (tree / "CelebA-HQ-img" / "5.jpg").write_bytes(photo_bytes(55))
    (tree / "CelebAMask-HQ-mask").mkdir()
    (tree / "CelebAMask-HQ-mask" / "5.png").write_bytes(png_bytes(np.full((512, 512), 40, np.uint8)))
    report = run_import(sessions, settings, tree)
    reasons = dict(report.bad)
    assert "256x256, expected 512x512" in reasons["CelebAMask-HQ-mask-anno/0/00001_hair.png"]
    assert "unknown class 'beard'" in reasons["CelebAMask-HQ-mask-anno/0/00002_beard.png"]
    assert "not an image" in reasons["CelebAMask-HQ-mask-anno/0/00003_nose.png"]
    assert "without an image" in reasons["CelebAMask-HQ-mask-anno/0/00009_skin.png"]
    assert "out of range" in reasons["CelebAMask-HQ-mask/5.png"]
    assert len(report.bad) == 5
    assert (report.imported, report.with_labels) == (1, 1)
    assert counts(sessions) == (1, 1)
    assert sorted(label_maps(sessions)) == [0]
    assert len(list(settings.images_dir.iterdir())) == 1


def test_split_lists_and_mapping_are_kept(settings, sessions, tmp_path):
    tree = tmp_path / "tree"
    write_tree(tree, [0, 1, 2, 3])
    (tree / "train.txt").write_text("0\n3\n")
    (tree / "val.txt").write_text("1\n")
    (tree / "test.txt").write_text("2\n")
    (tree / "mapping.csv").write_text('k,source_name,sha256,split\n1,"me, at home.png",x,val\n')
    run_import(sessions, settings, tree)
    with session_scope(sessions) as s:
        rows = {k: (split, name) for k, split, name in
                s.execute(select(Image.k, Image.split, Image.source_name))}
    assert rows == {0: ("train", "CelebA-HQ-img/0.jpg"), 1: ("val", "me, at home.png"),
                    2: ("test", "CelebA-HQ-img/2.jpg"), 3: ("train", "CelebA-HQ-img/3.jpg")}


def test_clashing_ids_get_fresh_ones_above_all_kept_ids(settings, sessions, tmp_path):
    write_tree(tmp_path / "a", [0, 5])
    run_import(sessions, settings, tmp_path / "a")
    tree_b = tmp_path / "b"
    write_tree(tree_b, [0, 3])
    (tree_b / "CelebA-HQ-img" / "0.jpg").write_bytes(photo_bytes(4242))  # a different face
    (tmp_path / "b" / "plain.jpg").write_bytes(photo_bytes(77))  # beside the tree: ignored
    report = run_import(sessions, settings, tree_b)
    assert (report.imported, report.duplicates) == (2, [])
    with session_scope(sessions) as s:
        rows = sorted(s.execute(select(Image.k, Image.source_k)).all())
    assert rows == [(0, 0), (3, 3), (5, 5), (6, 0)]


def _zip_with(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)


def test_zip_members_never_leave_the_data_dir(settings, sessions, tmp_path):
    victim = tmp_path / "evil.txt"
    absolute = tmp_path / "abs-evil.txt"
    link = zipfile.ZipInfo("link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = tmp_path / "upload.zip"
    _zip_with(archive, [
        ("faces/good.jpg", photo_bytes(1)),
        ("../evil.txt", b"escaped"),
        ("../../../evil.txt", b"escaped"),             # scratch is data/tmp/unzip-*: lands in tmp_path
        ("sub/../../../../../evil-up.txt", b"escaped"),  # and one level above tmp_path
        (str(absolute), b"escaped"),
        ("C:/evil.txt", b"escaped"),
        (link, b"/etc/passwd"),
        ("bomb.bmp", b"\x00" * (3 * 2**20)),
        ("faces/other.png", photo_bytes(2, fmt="PNG")),
    ])
    before = sorted(p.name for p in tmp_path.iterdir())
    report = run_import(sessions, settings, archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["data", "upload.zip"]
    assert not victim.exists() and not absolute.exists()
    assert not (tmp_path.parent / "evil-up.txt").exists()
    reasons = dict(report.bad)
    for name in ("../evil.txt", "../../../evil.txt", "sub/../../../../../evil-up.txt"):
        assert "'..'" in reasons[name]
    assert "absolute path" in reasons[str(absolute)]
    assert "drive-letter" in reasons["C:/evil.txt"]
    assert "symbolic link" in reasons["link.jpg"]
    assert "zip bomb" in reasons["bomb.bmp"]
    assert len(report.bad) == 7 and report.imported == 2
    with session_scope(sessions) as s:
        names = sorted(s.scalars(select(Image.source_name)))
    assert names == ["faces/good.jpg", "faces/other.png"]
    assert not any((settings.data_dir / "tmp").iterdir())  # scratch folder cleaned up
    assert len(list(settings.images_dir.iterdir())) == 2
    refused = {"evil.txt", "evil-up.txt", "abs-evil.txt", "link.jpg", "bomb.bmp"}
    assert not [p for p in settings.data_dir.rglob("*") if p.name in refused]


def test_zip_of_a_tree(settings, sessions, tmp_path):
    expected = write_tree(tmp_path / "export", [1, 2001])
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((tmp_path / "export").rglob("*")):
            zf.write(path, path.relative_to(tmp_path).as_posix())  # inside a top folder
    report = run_import(sessions, settings, archive)
    assert (report.imported, report.with_labels, report.bad) == (2, 2, [])
    got = label_maps(sessions)
    assert sorted(got) == [1, 2001] and all(np.array_equal(got[k], expected[k]) for k in got)


def test_bad_paths_are_one_line_errors_and_change_nothing(settings, sessions, tmp_path):
    with pytest.raises(FacetError, match="no such file or folder"):
        run_import(sessions, settings, tmp_path / "missing")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(FacetError, match="not a valid zip"):
        run_import(sessions, settings, tmp_path / "fake.zip")
    assert counts(sessions) == (0, 0)
    assert not (settings.data_dir / "images").exists()


def test_label_folder_without_images_is_reported(settings, sessions, tmp_path):
    folder = tmp_path / "in"
    (folder / "CelebAMask-HQ-mask").mkdir(parents=True)
    (folder / "CelebAMask-HQ-mask" / "0.png").write_bytes(png_bytes(g_mask_merge(face_masks(0))))
    (folder / "face.webp").write_bytes(photo_bytes(3, fmt="WEBP"))
    report = run_import(sessions, settings, folder)
    assert report.imported == 1
    assert "without CelebA-HQ-img" in dict(report.bad)["CelebAMask-HQ-mask/"]


def test_archive_total_size_cap_refuses_the_member_that_crosses_it(tmp_path):
    archive = tmp_path / "a.zip"
    _zip_with(archive, [("a.bin", b"x" * 600), ("b.bin", b"y" * 600), ("c.bin", b"z" * 300)])
    (tmp_path / "root").mkdir()
    refused = extract_into(archive, tmp_path / "root", max_total=1000)
    assert [(r.name, "expands past 1000 bytes" in r.reason) for r in refused] == [("b.bin", True)]
    assert sorted(p.name for p in (tmp_path / "root").iterdir()) == ["a.bin", "c.bin"]


@pytest.mark.parametrize("inner", ["CelebAMask-HQ-mask-anno", "CelebAMask-HQ-mask-anno/0",
                                   "CelebAMask-HQ-mask"])
def test_importing_a_trees_mask_folder_is_refused_and_adds_nothing(settings, sessions, tmp_path,
                                                                   inner):
    folder = tmp_path / "tree" / inner
    folder.mkdir(parents=True)
    (folder / "00000_skin.png").write_bytes(png_bytes(np.full((512, 512), 255, np.uint8)))
    with session_scope(sessions) as s:
        with pytest.raises(FacetError, match="label masks of a CelebAMask-HQ tree"):
            import_path(s, settings, folder)
    with session_scope(sessions) as s:
        assert s.scalar(select(func.count(Image.id))) == 0
