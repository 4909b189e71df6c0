"""The CelebAMask-HQ file format: paths, per-class masks, merging, and walking a tree.

Layout (docs/ARCHITECTURE.md, "CelebAMask-HQ format")::

    CelebA-HQ-img/{k}.jpg
    CelebAMask-HQ-mask-anno/{k // 2000}/{k:05d}_{name}.png   512x512, 0/255, one per present class
    CelebAMask-HQ-mask/{k}.png                               merged label map (mode L)

Merging goes in id order, later ids overwriting earlier ones, as the official ``g_mask.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.imageio import BadImageError, _open_checked, read_bytes
from core.labels import CELEBAMASK, LabelSet

IMAGE_DIR = "CelebA-HQ-img"
ANNO_DIR = "CelebAMask-HQ-mask-anno"
MERGED_DIR = "CelebAMask-HQ-mask"
MASK_SIZE = 512
FOLDER_SPAN = 2000

_ANNO_NAME = re.compile(r"^(\d+)_([a-z_]+)\.png$")


def image_relpath(k: int) -> str:
    return f"{IMAGE_DIR}/{k}.jpg"


def anno_relpath(k: int, class_name: str) -> str:
    return f"{ANNO_DIR}/{k // FOLDER_SPAN}/{k:05d}_{class_name}.png"


def merged_relpath(k: int) -> str:
    return f"{MERGED_DIR}/{k}.png"


def merge_class_masks(masks: dict[str, np.ndarray], labels: LabelSet = CELEBAMASK,
                      size: int = MASK_SIZE) -> np.ndarray:
    """Per-class binary masks (``H x W``, nonzero = class) → ``size x size`` uint8 label map.

    Classes are painted in id order, so a later id wins where masks overlap.
    Raises ``KeyError`` for unknown class names and ``ValueError`` for masks of the wrong shape.
    """
    out = np.zeros((size, size), dtype=np.uint8)
    for name in masks:
        labels.id(name)  # KeyError → unknown class
    for class_id, name in enumerate(labels.names):
        if name not in masks:
            continue
        mask = masks[name]
        if mask.shape != (size, size):
            raise ValueError(f"mask {name!r} is {mask.shape[1]}x{mask.shape[0]}, expected {size}x{size}")
        out[mask != 0] = class_id
    return out


def split_label_map(label_map: np.ndarray, labels: LabelSet = CELEBAMASK) -> dict[str, np.ndarray]:
    """``H x W`` label map → ``{name: H x W uint8 mask (0/255)}`` for every present class but background."""
    labels.validate(label_map)
    present = np.unique(label_map)
    return {labels.names[c]: np.where(label_map == c, 255, 0).astype(np.uint8)
            for c in present if c != 0}


def read_class_mask(source: Path | bytes) -> np.ndarray:
    """One per-class mask PNG → ``H x W`` bool (any nonzero channel value counts as set).

    The official files are 3-channel 0/255 PNGs; ``g_mask.py`` tests channel 0 ≠ 0.
    """
    img = _open_checked(read_bytes(source), 4 * MASK_SIZE * MASK_SIZE)
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr != 0


def parse_anno_name(filename: str) -> tuple[int, str] | None:
    """``"00042_l_eye.png"`` → ``(42, "l_eye")``; ``None`` for names that do not fit."""
    m = _ANNO_NAME.match(filename)
    return (int(m.group(1)), m.group(2)) if m else None


@dataclass(frozen=True)
class TreeSample:
    """One face in a CelebAMask-HQ tree: its id, image path, and where its labels are."""

    k: int
    image: Path
    anno_files: dict[str, Path]
    merged: Path | None

    @property
    def has_labels(self) -> bool:
        return bool(self.anno_files) or self.merged is not None


def is_tree(root: Path) -> bool:
    """True when ``root`` holds a ``CelebA-HQ-img`` folder."""
    return (root / IMAGE_DIR).is_dir()


def scan_tree(root: Path) -> list[TreeSample]:
    """All images of a CelebAMask-HQ tree, sorted by ``k``, with their label files.

    Images whose stem is not an integer are returned with ``k = -1``.
    """
    anno: dict[int, dict[str, Path]] = {}
    anno_root = root / ANNO_DIR
    if anno_root.is_dir():
        for path in sorted(anno_root.rglob("*.png")):
            parsed = parse_anno_name(path.name)
            if parsed is not None:
                anno.setdefault(parsed[0], {})[parsed[1]] = path
    samples = []
    for path in sorted((root / IMAGE_DIR).iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        k = int(path.stem) if path.stem.isdigit() else -1
        merged = root / MERGED_DIR / f"{k}.png"
        samples.append(TreeSample(k, path, anno.get(k, {}) if k >= 0 else {},
                                  merged if k >= 0 and merged.is_file() else None))
    return sorted(samples, key=lambda s: (s.k, s.image.name))


def load_sample_labels(sample: TreeSample, labels: LabelSet = CELEBAMASK) -> np.ndarray | None:
    """The merged ``512 x 512`` label map of a sample, or ``None`` when it has no labels.

    Per-class files take precedence over a merged PNG (they are the original annotation).
    Raises :class:`BadImageError` / ``ValueError`` with the offending file named.
    """
    from core.imageio import decode_label_png

    if sample.anno_files:
        masks = {}
        for name, path in sample.anno_files.items():
            if name not in labels.names:
                raise ValueError(f"{path.name}: unknown class {name!r}")
            try:
                masks[name] = read_class_mask(path)
            except BadImageError as err:
                raise BadImageError(f"{path.name}: {err}") from None
            if masks[name].shape != (MASK_SIZE, MASK_SIZE):
                h, w = masks[name].shape
                raise ValueError(f"{path.name}: mask is {w}x{h}, expected {MASK_SIZE}x{MASK_SIZE}")
        return merge_class_masks(masks, labels)
    if sample.merged is not None:
        try:
            return decode_label_png(sample.merged, labels.num_classes)
        except BadImageError as err:
            raise BadImageError(f"{sample.merged.name}: {err}") from None
    return None
