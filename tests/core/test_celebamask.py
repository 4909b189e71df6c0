"""CelebAMask-HQ format: paths, g_mask.py merge order, split/merge round trips, tree scanning."""
import numpy as np
import pytest
from PIL import Image

from core.celebamask import (anno_relpath, load_sample_labels, merge_class_masks, merged_relpath,
                             parse_anno_name, scan_tree, split_label_map)
from core.labels import CELEBAMASK


def test_paths_use_folder_of_2000_and_five_digits():
    assert anno_relpath(0, "skin") == "CelebAMask-HQ-mask-anno/0/00000_skin.png"
    assert anno_relpath(1999, "hair") == "CelebAMask-HQ-mask-anno/0/01999_hair.png"
    assert anno_relpath(2000, "l_eye") == "CelebAMask-HQ-mask-anno/1/02000_l_eye.png"
    assert anno_relpath(29999, "neck_l") == "CelebAMask-HQ-mask-anno/14/29999_neck_l.png"
    assert merged_relpath(7) == "CelebAMask-HQ-mask/7.png"
    assert parse_anno_name("02000_neck_l.png") == (2000, "neck_l")
    assert parse_anno_name("notes.png") is None


def test_merge_later_id_overwrites_earlier():
    skin = np.zeros((512, 512), bool)
    skin[100:300, 100:300] = True
    hair = np.zeros_like(skin)
    hair[50:150, 50:350] = True
    nose = np.zeros_like(skin)
    nose[120:140, 190:210] = True  # inside hair and skin: hair (13) wins over nose (2)
    out = merge_class_masks({"hair": hair, "skin": skin, "nose": nose})
    assert out[130, 200] == CELEBAMASK.id("hair")
    assert out[200, 200] == CELEBAMASK.id("skin")
    assert out[0, 0] == 0


def test_merge_rejects_unknown_class_and_wrong_size():
    with pytest.raises(KeyError, match="beard"):
        merge_class_masks({"beard": np.zeros((512, 512), bool)})
    with pytest.raises(ValueError, match="expected 512x512"):
        merge_class_masks({"skin": np.zeros((256, 256), bool)})


def test_split_then_merge_is_identity_for_thin_structures():
    m = np.zeros((512, 512), np.uint8)
    m[200:400, 150:350] = CELEBAMASK.id("neck")
    m[300, 150:350] = CELEBAMASK.id("neck_l")  # one pixel thin necklace
    m[10, 10] = CELEBAMASK.id("ear_r")
    parts = split_label_map(m)
    assert set(parts) == {"neck", "neck_l", "ear_r"}
    assert np.array_equal(merge_class_masks({n: p != 0 for n, p in parts.items()}), m)


def test_scan_and_load_tree_with_rgb_masks(tmp_path):
    (tmp_path / "CelebA-HQ-img").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "CelebA-HQ-img" / "2000.jpg")
    Image.new("RGB", (64, 64)).save(tmp_path / "CelebA-HQ-img" / "5.jpg")
    mask = np.zeros((512, 512, 3), np.uint8)
    mask[10:20, 10:20] = 255
    path = tmp_path / anno_relpath(2000, "l_eye")
    path.parent.mkdir(parents=True)
    Image.fromarray(mask).save(path)
    samples = scan_tree(tmp_path)
    assert [s.k for s in samples] == [5, 2000]
    assert not samples[0].has_labels
    labels = load_sample_labels(samples[1])
    assert labels[15, 15] == CELEBAMASK.id("l_eye") and labels.sum() == 100 * CELEBAMASK.id("l_eye")
