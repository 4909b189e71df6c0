"""db/exporter.py: CelebAMask-HQ export, read back the official way and by common loaders."""
from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from core.errors import FacetError
from core.imageio import decode_label_png, encode_label_png
from db.database import open_database
from db.engine import session_scope
from db.exporter import export_dataset
from db.images import add_image
from db.importer import import_path
from db.models import Image, Revision, RevisionState
from db.revisions import save_revision
from db.settings import Settings
from tests.app_cli import cli_env
from tests.db.io_fixtures import G_MASK_LABELS, g_mask_read, photo_bytes, write_tree

REPO = Path(__file__).resolve().parents[2]
KS = [0, 1999, 2000, 29999]


def do_import(sessions, settings, path):
    with session_scope(sessions) as s:
        return import_path(s, settings, path)


def do_export(sessions, settings, out, **kw):
    with session_scope(sessions) as s:
        return export_dataset(s, settings, out, **kw)


def stored_maps(sessions) -> dict[int, np.ndarray]:
    with session_scope(sessions) as s:
        rows = s.execute(select(Image.k, Revision).join(Revision, Revision.image_id == Image.id))
        return {k: decode_label_png(rev.label_png, 19) for k, rev in rows}


def loader_read(root: Path, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What common PyTorch face-parsing datasets do: PIL image as RGB, PIL mask → numpy."""
    image = np.array(PILImage.open(root / "CelebA-HQ-img" / f"{k}.jpg").convert("RGB"))
    label = np.array(PILImage.open(root / "CelebAMask-HQ-mask" / f"{k}.png"))
    return image, label


@pytest.fixture
def fresh(tmp_path):
    """A second, empty data dir: ``(settings, sessions)``."""
    settings = Settings.resolve(data_dir=tmp_path / "data2", env={})
    factory = open_database(settings)
    yield settings, factory
    factory.kw["bind"].dispose()


def test_tree_round_trip_keeps_maps_and_ids(settings, sessions, tmp_path, fresh):
    expected = write_tree(tmp_path / "tree", KS)
    do_import(sessions, settings, tmp_path / "tree")
    out = tmp_path / "out"
    report = do_export(sessions, settings, out)
    assert report.images == 4
    anno = out / "CelebAMask-HQ-mask-anno"
    assert sorted(p.name for p in anno.iterdir()) == ["0", "1", "14"]
    assert (anno / "0" / "00000_neck_l.png").is_file()
    assert (anno / "14" / "29999_neck_l.png").is_file()
    assert not (anno / "0" / "01999_hat.png").exists()  # absent class: no file
    for k in KS:
        src = (tmp_path / "tree" / "CelebA-HQ-img" / f"{k}.jpg").read_bytes()
        assert (out / "CelebA-HQ-img" / f"{k}.jpg").read_bytes() == src  # JPEG kept byte for byte
        assert np.array_equal(g_mask_read(anno, k), expected[k]), k  # official preprocessing
        image, label = loader_read(out, k)
        assert image.shape == (40, 48, 3) and label.dtype == np.uint8
        assert np.array_equal(label, expected[k]), k
        merged = PILImage.open(out / "CelebAMask-HQ-mask" / f"{k}.png")
        assert (merged.mode, merged.size) == ("L", (512, 512))
    for path in anno.rglob("*.png"):
        im = PILImage.open(path)
        arr = np.array(im)
        assert (im.mode, im.size) == ("RGB", (512, 512))
        assert set(np.unique(arr)) <= {0, 255} and (arr[:, :, 0] == arr[:, :, 2]).all()
    thin = np.array(PILImage.open(anno / "0" / "00000_neck_l.png"))[:, :, 0] != 0
    assert thin.any() and not (thin[:-1] & thin[1:]).any()  # still one pixel thin
    with open(out / "mapping.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["k"]) for r in rows] == KS
    assert rows[0]["source_name"] == "CelebA-HQ-img/0.jpg"
    lists = {s: (out / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sorted(int(k) for ks in lists.values() for k in ks) == KS

    settings2, sessions2 = fresh
    report = do_import(sessions2, settings2, out)
    assert (report.imported, report.with_labels, report.bad) == (4, 4, [])
    again = stored_maps(sessions2)
    assert sorted(again) == KS
    assert all(np.array_equal(again[k], expected[k]) for k in KS)
    with session_scope(sessions2) as s:
        rows2 = s.execute(select(Image.k, Image.split, Image.source_name)).all()
    with session_scope(sessions) as s:
        rows1 = s.execute(select(Image.k, Image.split, Image.source_name)).all()
    assert sorted(rows2) == sorted(rows1)  # splits and original names survive too


def test_merged_only_tree_exports_per_class_files(settings, sessions, tmp_path):
    expected = write_tree(tmp_path / "tree", [7, 4001], merged_only=True)
    do_import(sessions, settings, tmp_path / "tree")
    do_export(sessions, settings, tmp_path / "out")
    for k in (7, 4001):
        assert np.array_equal(g_mask_read(tmp_path / "out" / "CelebAMask-HQ-mask-anno", k), expected[k])
        names = {p.name for p in (tmp_path / "out" / "CelebAMask-HQ-mask-anno" / str(k // 2000)).iterdir()
                 if p.name.startswith(f"{k:05d}_")}
        present = {f"{k:05d}_{G_MASK_LABELS[c - 1]}.png" for c in np.unique(expected[k]) if c}
        assert names == present


def _labelled(s, settings, seed: int, states: list[RevisionState]) -> int:
    """An image (k = seed order) with one main-line revision per state, oldest first."""
    img = add_image(s, settings, photo_bytes(seed, size=(64, 64)), f"{seed}.jpg").image
    label = np.zeros((64, 64), dtype=np.uint8)
    label[10:20, 10:20] = 2
    for number, state in enumerate(states):
        save_revision(s, img.id, encode_label_png(label), None, number or None, state=state)
    return img.k


def test_status_picks_by_latest_main_line_revision(settings, sessions, tmp_path):
    st = RevisionState
    with session_scope(sessions) as s:
        k_draft = _labelled(s, settings, 1, [st.draft])
        k_sub = _labelled(s, settings, 2, [st.submitted])
        k_app = _labelled(s, settings, 3, [st.approved])
        k_rej = _labelled(s, settings, 4, [st.rejected])
        k_reopened = _labelled(s, settings, 5, [st.approved, st.draft])  # latest is a draft
        _labelled(s, settings, 6, [])  # unlabelled: never exported
    want = {"approved": [k_app], "submitted": [k_sub, k_app],
            "any": [k_draft, k_sub, k_app, k_rej, k_reopened]}
    for status, ks in want.items():
        out = tmp_path / status
        report = do_export(sessions, settings, out, status=status)
        got = sorted(int(p.stem) for p in (out / "CelebA-HQ-img").iterdir())
        assert got == sorted(ks), status
        assert report.images == len(ks)
    with pytest.raises(FacetError, match="unknown export status"):
        do_export(sessions, settings, tmp_path / "x", status="done")
    assert not (tmp_path / "x").exists()


def test_non_jpeg_and_small_maps_are_converted(settings, sessions, tmp_path):
    label = np.zeros((64, 64), dtype=np.uint8)
    label[:, 32:] = 13
    label[5, :] = 16  # a one-pixel line becomes an 8-pixel band: nearest neighbour, no blending
    with session_scope(sessions) as s:
        img = add_image(s, settings, photo_bytes(9, size=(64, 64), fmt="PNG"), "face.png").image
        save_revision(s, img.id, encode_label_png(label), None, None, state=RevisionState.submitted)
    do_export(sessions, settings, tmp_path / "out")
    jpg = (tmp_path / "out" / "CelebA-HQ-img" / "0.jpg").read_bytes()
    assert jpg[:3] == b"\xff\xd8\xff" and PILImage.open(io.BytesIO(jpg)).size == (64, 64)
    _, merged = loader_read(tmp_path / "out", 0)
    assert np.array_equal(merged, np.repeat(np.repeat(label, 8, axis=0), 8, axis=1))


def test_zip_export_has_the_same_layout_and_imports_back(settings, sessions, tmp_path, fresh):
    expected = write_tree(tmp_path / "tree", [0, 2000])
    do_import(sessions, settings, tmp_path / "tree")
    do_export(sessions, settings, tmp_path / "folder")
    report = do_export(sessions, settings, tmp_path / "out.zip", as_zip=True)
    assert report.images == 2
    folder_files = sorted(p.relative_to(tmp_path / "folder").as_posix()
                          for p in (tmp_path / "folder").rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        assert sorted(zf.namelist()) == folder_files
        merged = np.array(PILImage.open(io.BytesIO(zf.read("CelebAMask-HQ-mask/2000.png"))))
    assert np.array_equal(merged, expected[2000])
    settings2, sessions2 = fresh
    do_import(sessions2, settings2, tmp_path / "out.zip")
    again = stored_maps(sessions2)
    assert sorted(again) == [0, 2000] and all(np.array_equal(again[k], expected[k]) for k in again)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    for path in (tmp_path / "out.zip", tmp_path / "folder"):
        assert path.stat().st_mode & 0o444 == 0o444  # readable by others, not a private temp


def test_existing_output_is_refused_and_left_alone(settings, sessions, tmp_path):
    write_tree(tmp_path / "tree", [1])
    do_import(sessions, settings, tmp_path / "tree")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FacetError, match="not an empty folder"):
        do_export(sessions, settings, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(FacetError, match="is a folder"):
        do_export(sessions, settings, out, as_zip=True)
    (tmp_path / "empty").mkdir()
    assert do_export(sessions, settings, tmp_path / "empty").images == 1


def test_cli_export_zip(settings, sessions, tmp_path):
    write_tree(tmp_path / "tree", [3, 5])
    do_import(sessions, settings, tmp_path / "tree")
    env = cli_env(settings)
    proc = subprocess.run([sys.executable, "app.py", "export", str(tmp_path / "o.zip"), "--zip",
                           "--status", "approved"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("exported 2 images (")
    with zipfile.ZipFile(tmp_path / "o.zip") as zf:
        assert {"CelebA-HQ-img/3.jpg", "CelebA-HQ-img/5.jpg", "mapping.csv"} <= set(zf.namelist())
    proc = subprocess.run([sys.executable, "app.py", "export", str(tmp_path / "o2"),
                           "--status", "nope"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
