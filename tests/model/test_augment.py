"""Augmentations: image and label move together, and a flip swaps left and right classes."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.labels import CELEBAMASK
from model.augment import AugmentConfig, augment_pair, flip_pair
from model.edges import label_edges_np
from tests.model.faces import face_label

L_EYE, R_EYE = CELEBAMASK.id("l_eye"), CELEBAMASK.id("r_eye")


def test_flip_mirrors_and_swaps_l_and_r():
    lab = face_label(0, 64)
    img = CELEBAMASK.palette[lab]
    fimg, flab = flip_pair(img, lab, CELEBAMASK)
    assert np.array_equal(fimg, img[:, ::-1])
    assert np.array_equal(flab == R_EYE, (lab == L_EYE)[:, ::-1])
    assert np.array_equal(flab == L_EYE, (lab == R_EYE)[:, ::-1])
    assert np.array_equal(flab == CELEBAMASK.id("nose"), (lab == CELEBAMASK.id("nose"))[:, ::-1])


def test_augment_with_flip_only_equals_flip():
    lab = face_label(1, 64)
    img = CELEBAMASK.palette[lab]
    cfg = replace(AugmentConfig.none(), flip_prob=1.0)
    aimg, alab = augment_pair(img, lab, 64, CELEBAMASK, np.random.default_rng(0), cfg)
    fimg, flab = flip_pair(img, lab, CELEBAMASK)
    assert np.array_equal(alab, flab) and np.array_equal(aimg, fimg)


def test_geometric_augment_keeps_image_and_label_aligned():
    lab = face_label(2, 128)
    img = CELEBAMASK.palette[lab]          # each class painted in its own colour
    cfg = AugmentConfig(brightness=0, contrast=0, saturation=0, channel_gain=0, blur_prob=0,
                        rotation_deg=25, scale=(0.7, 1.4), shift=0.1, flip_prob=0.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        aimg, alab = augment_pair(img, lab, 96, CELEBAMASK, rng, cfg)
        assert aimg.shape == (96, 96, 3) and alab.shape == (96, 96) and alab.dtype == np.uint8
        match = (np.abs(aimg.astype(int) - CELEBAMASK.palette[alab].astype(int)).sum(-1) < 30)
        assert match.mean() > 0.8
        assert (~match & ~label_edges_np(alab)).mean() < 0.005  # only boundary pixels may differ
        assert set(np.unique(alab)) <= set(np.unique(lab)) | {0}


def test_photometric_augment_changes_only_the_image():
    lab = face_label(3, 64)
    img = CELEBAMASK.palette[lab]
    cfg = AugmentConfig(scale=(1, 1), rotation_deg=0, shift=0, flip_prob=0, blur_prob=1.0)
    aimg, alab = augment_pair(img, lab, 64, CELEBAMASK, np.random.default_rng(1), cfg)
    assert np.array_equal(alab, lab)
    assert not np.array_equal(aimg, img)
