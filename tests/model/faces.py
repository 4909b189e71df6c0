"""Tiny procedural faces for unit tests (independent of model/synth/): a label map of
ellipses and lines in CelebAMask-HQ ids, and an image that colours each class with noise."""
from __future__ import annotations

import numpy as np

from core.labels import CELEBAMASK

_COLOURS = np.random.default_rng(1234).integers(30, 225, size=(CELEBAMASK.num_classes, 3))


def _ellipse(lab: np.ndarray, cx: float, cy: float, rx: float, ry: float, cid: int) -> None:
    h, w = lab.shape
    yy, xx = np.mgrid[0:h, 0:w]
    lab[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0] = cid


def face_label(seed: int, size: int = 64) -> np.ndarray:
    """``size x size`` uint8 label map with the face parts at jittered positions."""
    rng = np.random.default_rng(seed)
    s = size / 64.0
    j = lambda v: v * s + rng.uniform(-1.5, 1.5) * s  # noqa: E731
    lab = np.zeros((size, size), np.uint8)
    ids = CELEBAMASK.id
    lab[int(j(50)):, :] = ids("cloth")
    _ellipse(lab, j(32), j(50), 9 * s, 12 * s, ids("neck"))
    _ellipse(lab, j(32), j(24), 20 * s, 20 * s, ids("hair"))
    _ellipse(lab, j(13), j(32), 3 * s, 6 * s, ids("l_ear"))
    _ellipse(lab, j(51), j(32), 3 * s, 6 * s, ids("r_ear"))
    _ellipse(lab, j(32), j(33), 16 * s, 19 * s, ids("skin"))
    _ellipse(lab, j(24), j(24), 5 * s, 1.5 * s, ids("l_brow"))
    _ellipse(lab, j(40), j(24), 5 * s, 1.5 * s, ids("r_brow"))
    _ellipse(lab, j(24), j(29), 4 * s, 2 * s, ids("l_eye"))
    _ellipse(lab, j(40), j(29), 4 * s, 2 * s, ids("r_eye"))
    _ellipse(lab, j(32), j(36), 3 * s, 5 * s, ids("nose"))
    _ellipse(lab, j(32), j(43), 7 * s, 2 * s, ids("u_lip"))
    _ellipse(lab, j(32), j(46), 7 * s, 2 * s, ids("l_lip"))
    _ellipse(lab, j(12), j(40), 1.5 * s, 1.5 * s, ids("ear_r"))
    y = int(j(56))
    lab[y:y + max(1, int(s)), int(22 * s):int(42 * s)] = ids("neck_l")
    return lab


def face_image(label: np.ndarray, seed: int) -> np.ndarray:
    """``H x W x 3`` uint8 image that paints each class in its colour, plus noise."""
    rng = np.random.default_rng(seed + 10_000)
    img = _COLOURS[label].astype(np.float32) + rng.normal(0, 8, size=label.shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def face_samples(n: int, size: int = 64, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for i in range(n):
        lab = face_label(seed + i, size)
        out.append((face_image(lab, seed + i), lab))
    return out
