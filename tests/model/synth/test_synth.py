"""Synthetic faces: exact, deterministic, honest (colour alone does not give the class), and
written as a CelebAMask-HQ tree that reads back to the same label maps."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.celebamask import MASK_SIZE, load_sample_labels, scan_tree
from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.synth import STYLES, face_seed, render_face, write_synth_tree

REPO = Path(__file__).resolve().parents[3]
EXTRAS = LabelSet.celebamask(extras=True)
FACE_CLASSES = [CELEBAMASK.id(n) for n in ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow",
                                           "mouth", "u_lip", "l_lip")]


@pytest.fixture(scope="module")
def studio_512() -> list[tuple[np.ndarray, np.ndarray]]:
    """24 studio faces at full size, labelled with the extra occluder classes."""
    return [render_face(seed, 512, "studio", EXTRAS) for seed in range(24)]


@pytest.fixture(scope="module")
def wild_256() -> list[tuple[np.ndarray, np.ndarray]]:
    return [render_face(seed, 256, "wild", EXTRAS) for seed in range(24)]


def without_extras(label_map: np.ndarray) -> np.ndarray:
    """An extras label map as the 19-class set sees it: hands and masks are background."""
    return np.where(label_map >= CELEBAMASK.num_classes, 0, label_map).astype(np.uint8)


def test_same_seed_same_face_other_seed_other_face() -> None:
    img, lab = render_face(11, 256, "wild")
    img2, lab2 = render_face(11, 256, "wild")
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    assert lab.shape == (256, 256) and lab.dtype == np.uint8
    assert np.array_equal(img, img2) and np.array_equal(lab, lab2)
    other_img, other_lab = render_face(12, 256, "wild")
    assert not np.array_equal(lab, other_lab) and not np.array_equal(img, other_img)
    studio_img, _ = render_face(11, 256, "studio")
    assert not np.array_equal(img, studio_img)


def test_label_ids_are_valid_and_occluders_are_background_without_extras(studio_512) -> None:
    for seed, (img, lab) in enumerate(studio_512[:6]):
        EXTRAS.validate(lab)
        plain_img, plain = render_face(seed, 512, "studio")
        CELEBAMASK.validate(plain)
        assert np.array_equal(plain, without_extras(lab))
        assert np.array_equal(plain_img, img)  # the photo does not depend on the label set


def test_every_class_appears_across_24_faces(studio_512) -> None:
    seen = set()
    for _, lab in studio_512:
        seen |= set(np.unique(without_extras(lab)).tolist())
    missing = [CELEBAMASK.names[c] for c in range(1, 19) if c not in seen]
    assert not missing, f"classes never drawn: {missing}"


def test_open_and_closed_mouths(studio_512) -> None:
    mouth = CELEBAMASK.id("mouth")
    has_inner = [bool((lab == mouth).any()) for _, lab in studio_512]
    assert any(has_inner) and not all(has_inner)


def test_some_necklace_is_one_to_three_pixels_thin(studio_512) -> None:
    necklace = CELEBAMASK.id("neck_l")
    widths = []
    for _, lab in studio_512:
        chain = lab == necklace
        cols = chain.any(axis=0)
        if cols.sum() < 20:
            continue
        widths.append(float(np.median(chain[:, cols].sum(axis=0))))  # vertical thickness per column
    assert widths, "no necklace in 24 faces"
    assert min(widths) <= 3


def _occluded_share(faces: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean share of the face (inner-face classes plus what covers them) hidden by hands/masks."""
    occluder = [EXTRAS.id("hand"), EXTRAS.id("mask")]
    shares = []
    for _, lab in faces:
        hidden = np.isin(lab, occluder).sum()
        shares.append(hidden / max(1, hidden + np.isin(lab, FACE_CLASSES).sum()))
    return float(np.mean(shares))


def test_wild_hides_more_of_the_face_than_studio(studio_512, wild_256) -> None:
    studio, wild = _occluded_share(studio_512), _occluded_share(wild_256)
    assert wild > 0.15 and wild > 3 * studio, (studio, wild)


def _centroid_x(lab: np.ndarray, name: str) -> float | None:
    xs = np.nonzero(lab == CELEBAMASK.id(name))[1]
    return float(xs.mean()) if xs.size else None


def test_left_classes_are_on_the_image_left_and_flips_stay_valid(studio_512) -> None:
    checked = 0
    for _, lab in studio_512:
        lab = without_extras(lab)
        for view in (lab, CELEBAMASK.flip(lab)):
            for part in ("eye", "brow", "ear"):
                left, right = _centroid_x(view, "l_" + part), _centroid_x(view, "r_" + part)
                if left is not None and right is not None:
                    assert left < right, part
                    checked += 1
    assert checked > 100


def test_same_face_at_another_size(studio_512) -> None:
    _, big = studio_512[3]
    _, small = render_face(3, 256, "studio", EXTRAS)
    assert (big[1::2, 1::2] == small).mean() > 0.93


def _pixels(faces: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    rgb = np.concatenate([img.reshape(-1, 3) for img, _ in faces]).astype(np.float64)
    return rgb, np.concatenate([lab.ravel() for _, lab in faces])


@pytest.mark.parametrize("style", STYLES)
def test_colour_alone_does_not_give_the_class(style: str) -> None:
    """Fit colour-only classifiers on 10 faces and test them on 10 others.

    A generator that paints classes in their own colours lets these reach ~1.0 pixel
    accuracy on the face; a shape-aware parser reaches > 0.9. Below 0.6 — about the share of
    the two largest classes (hair, clothes or skin) — colour leaves the parser little to copy.
    Two classifiers: nearest class-mean colour, and the Bayes-optimal rule over 16^3 colour
    bins (the best any colour-only rule can do on these pixels).
    """
    faces = [render_face(seed, 160, style) for seed in range(100, 120)]
    x, y = _pixels(faces[:10])
    xt, yt = _pixels(faces[10:])
    fg = yt > 0
    present = np.unique(y)
    means = np.stack([x[y == c].mean(axis=0) for c in present])
    nearest = present[((means ** 2).sum(axis=1) - 2 * xt @ means.T).argmin(axis=1)]
    assert (nearest[fg] == yt[fg]).mean() < 0.6

    def bins(rgb: np.ndarray) -> np.ndarray:
        q = rgb.astype(np.int64) // 16
        return q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2]

    counts = np.zeros((4096, CELEBAMASK.num_classes))
    np.add.at(counts, (bins(x), y), 1)
    bayes = counts.argmax(axis=1)[bins(xt)]
    assert (bayes[fg] == yt[fg]).mean() < 0.6


def test_tree_reads_back_to_the_exact_label_maps(tmp_path: Path) -> None:
    ks = write_synth_tree(tmp_path / "a", 3, seed=5, start_k=1999, progress=False)
    assert ks == [1999, 2000, 2001]
    samples = scan_tree(tmp_path / "a")
    assert [s.k for s in samples] == ks
    for sample in samples:
        image, expected = render_face(face_seed(5, sample.k), 512, "studio")
        assert np.array_equal(load_sample_labels(sample), expected)
        assert sample.merged is not None
        assert np.array_equal(np.asarray(Image.open(sample.merged)), expected)
        assert set(sample.anno_files) == {CELEBAMASK.names[c] for c in np.unique(expected) if c}
        with Image.open(sample.image) as img:
            assert img.format == "JPEG" and img.size == (512, 512)
            assert np.abs(np.asarray(img, dtype=np.int16) - image).mean() < 4
    assert (tmp_path / "a/CelebAMask-HQ-mask-anno/0/01999_skin.png").is_file()
    assert (tmp_path / "a/CelebAMask-HQ-mask-anno/1/02000_skin.png").is_file()


def test_tree_bytes_are_reproducible_and_do_not_depend_on_count(tmp_path: Path) -> None:
    write_synth_tree(tmp_path / "a", 2, seed=9, style="wild", size=256, progress=False)
    write_synth_tree(tmp_path / "b", 3, seed=9, style="wild", size=256, progress=False)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files_a and all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
                           for f in files_a)
    with Image.open(tmp_path / "a/CelebA-HQ-img/0.jpg") as img:
        assert img.size == (256, 256)
    merged = np.asarray(Image.open(tmp_path / "a/CelebAMask-HQ-mask/0.png"))
    assert merged.shape == (MASK_SIZE, MASK_SIZE)  # label maps stay exact at 512


def test_rewriting_a_tree_leaves_no_stale_class_files(tmp_path: Path) -> None:
    for seed in (1, 2):
        write_synth_tree(tmp_path, 3, seed=seed, progress=False)
    for sample in scan_tree(tmp_path):
        assert np.array_equal(load_sample_labels(sample), render_face(face_seed(2, sample.k))[1])


def test_bad_arguments_raise_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for kwargs, words in (({"count": 0}, "count"), ({"count": 1, "style": "noir"}, "style"),
                          ({"count": 1, "seed": -1}, "seed")):
        with pytest.raises(FacetError, match=words):
            write_synth_tree(tmp_path / "out", progress=False, **kwargs)
    with pytest.raises(FacetError, match="not a folder"):
        write_synth_tree(tmp_path / "file", 1, progress=False)
    assert not (tmp_path / "out").exists()


def test_cli_writes_a_tree_and_rejects_a_zero_count(tmp_path: Path) -> None:
    out = tmp_path / "faces"
    run = subprocess.run([sys.executable, "app.py", "synth", str(out), "--count", "3", "--seed", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "wrote 3 studio faces" in run.stdout
    assert sorted(p.name for p in (out / "CelebA-HQ-img").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert len(list((out / "CelebAMask-HQ-mask").iterdir())) == 3
    assert np.array_equal(load_sample_labels(scan_tree(out)[2]), render_face(face_seed(1, 2))[1])

    bad = subprocess.run([sys.executable, "app.py", "synth", str(tmp_path / "x"), "--count", "0"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --count must be at least 1, got 0"]
    assert not (tmp_path / "x").exists()
