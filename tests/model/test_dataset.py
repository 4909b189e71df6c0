"""Loading training data from disk, and the seeded batch stream."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.celebamask import IMAGE_DIR
from core.errors import FacetError
from core.labels import CELEBAMASK
from model.augment import AugmentConfig
from model.dataset import BatchStream, load_images, load_tree, load_tree_named
from tests.model.faces import face_samples


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    from model.synth import write_synth_tree

    root = tmp_path_factory.mktemp("tree")
    write_synth_tree(root, 2, seed=0, size=128, progress=False)   # 128 px photos, 512 px labels
    return root


def test_tree_images_take_the_label_size_or_the_requested_one(tree):
    named = load_tree_named(tree)
    assert [n for n, _, _ in named] == ["0", "1"]
    for _, image, label in named:
        assert image.shape == (512, 512, 3) and label.shape == (512, 512)
    small = load_tree(tree, size=64)
    assert [(im.shape, lab.shape) for im, lab in small] == [((64, 64, 3), (64, 64))] * 2
    assert set(np.unique(small[0][1])) <= set(np.unique(named[0][2]))   # nearest: no new ids


def test_image_folders_and_trees(tree, tmp_path):
    assert [im.shape for im in load_images(tree)] == [(128, 128, 3)] * 2
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert [im.shape for im in load_images(tmp_path, size=32)] == [(32, 32, 3)]
    with pytest.raises(FacetError, match="not a CelebAMask-HQ tree"):
        load_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacetError, match="no images"):
        load_images(tmp_path / "empty")
    with pytest.raises(FacetError, match="not found"):
        load_tree(tmp_path / "missing")
    (tree / IMAGE_DIR / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    try:
        with pytest.raises(FacetError, match="broken.jpg"):
            load_images(tree)
    finally:
        (tree / IMAGE_DIR / "broken.jpg").unlink()


def test_batch_stream_shapes_and_seeds():
    samples = face_samples(3, 48)
    unlabeled = [im for im, _ in face_samples(2, 40, seed=9)]
    make = lambda seed: BatchStream(samples, unlabeled, 32, 4, 2, CELEBAMASK,  # noqa: E731
                                    AugmentConfig(), seed)
    a, b, c = (next(iter(make(s))) for s in (1, 1, 2))
    assert a["images"].shape == (4, 3, 32, 32) and a["images"].dtype == torch.uint8
    assert a["targets"].shape == (4, 32, 32) and a["unlabeled"].shape == (2, 3, 32, 32)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["images"], c["images"])
