"""Loading training and evaluation data from disk, and the random batch stream for training.

A labelled source is a CelebAMask-HQ tree (:mod:`core.celebamask`); its images are resized to
the label-map size, so a pair always has matching shapes. An unlabelled source is a tree (all
its images) or a plain folder of images.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from core.celebamask import IMAGE_DIR, is_tree, load_sample_labels, scan_tree
from core.errors import FacetError
from core.imageio import IMAGE_SUFFIXES, BadImageError, decode_image
from core.labels import CELEBAMASK, LabelSet
from model.augment import AugmentConfig, augment_pair, resize_pair

Sample = tuple[np.ndarray, np.ndarray]
"""``(image H x W x 3 uint8, label H x W uint8)``."""


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise FacetError(f"{what} not found: {path}")
    if not path.is_dir():
        raise FacetError(f"{what} is not a folder: {path}")


def load_tree(root: str | os.PathLike, labels: LabelSet = CELEBAMASK,
              limit: int | None = None, size: int | None = None) -> list[Sample]:
    """The labelled samples of a CelebAMask-HQ tree, sorted by id, images resized to their
    label maps (or both to ``size x size`` when given: training needs no more, and a large
    tree then fits in memory). A :class:`FacetError` when ``root`` is not a tree or has no
    labelled image."""
    out = []
    for _, im, lab in load_tree_named(root, labels, limit):
        out.append(resize_pair(im, lab, size) if size else (im, lab))
    return out


def load_tree_named(root: str | os.PathLike, labels: LabelSet = CELEBAMASK,
                    limit: int | None = None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Like :func:`load_tree` with each image's file stem first."""
    root = Path(root)
    _require_dir(root, "data folder")
    if not is_tree(root):
        raise FacetError(f"{root} is not a CelebAMask-HQ tree (no {IMAGE_DIR}/ folder)")
    out = []
    for sample in scan_tree(root):
        if not sample.has_labels:
            continue
        try:
            label = load_sample_labels(sample, labels)
            image = decode_image(sample.image)
        except (BadImageError, ValueError) as err:
            raise FacetError(f"{sample.image.name}: {err}") from None
        if image.shape[:2] != label.shape:
            image = np.asarray(Image.fromarray(image).resize(label.shape[::-1], Image.BILINEAR))
        out.append((sample.image.stem, image, label))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise FacetError(f"{root} has no labelled images")
    return out


def image_files(root: str | os.PathLike) -> list[Path]:
    """Image files of a plain folder, or of a tree's ``CelebA-HQ-img/``, sorted by name."""
    root = Path(root)
    _require_dir(root, "image folder")
    folder = root / IMAGE_DIR if is_tree(root) else root
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise FacetError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def load_images(root: str | os.PathLike, limit: int | None = None,
                size: int | None = None) -> list[np.ndarray]:
    """Decode the images of :func:`image_files` (for unlabelled pools), resized to
    ``size x size`` when given."""
    out = []
    for path in image_files(root)[:limit]:
        try:
            image = decode_image(path)
        except BadImageError as err:
            raise FacetError(f"{path.name}: {err}") from None
        out.append(resize_pair(image, None, size)[0] if size else image)
    return out


class BatchStream(IterableDataset):
    """Endless random training batches, augmented on the fly.

    Each item is a dict of uint8 tensors: ``"images": B x 3 x S x S``, ``"targets": B x S x S``
    and, when an unlabelled pool is given, ``"unlabeled": U x 3 x S x S``. Sampling is
    seeded; with DataLoader workers each worker draws from its own seed.
    """

    def __init__(self, samples: Sequence[Sample], unlabeled: Sequence[np.ndarray], size: int,
                 batch_size: int, unlabeled_batch: int, labels: LabelSet,
                 augment: AugmentConfig, seed: int) -> None:
        if not samples:
            raise FacetError("training needs at least one labelled image")
        # Resize once to the network input (antialiased), as the predictor does.
        self.samples = [resize_pair(im, lab, size) for im, lab in samples]
        self.unlabeled = [resize_pair(im, None, size)[0] for im in unlabeled]
        self.size, self.batch_size, self.unlabeled_batch = size, batch_size, unlabeled_batch
        self.labels, self.augment, self.seed = labels, augment, seed

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        rng = np.random.default_rng([self.seed, 0 if info is None else info.id + 1])
        while True:
            yield self.draw(rng)

    def draw(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(len(self.samples), size=self.batch_size)
        pairs = [augment_pair(*self.samples[i], self.size, self.labels, rng, self.augment) for i in idx]
        item = {"images": torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2),
                "targets": torch.from_numpy(np.stack([p[1] for p in pairs]))}
        if self.unlabeled and self.unlabeled_batch:
            uidx = rng.integers(len(self.unlabeled), size=self.unlabeled_batch)
            imgs = [augment_pair(self.unlabeled[i], None, self.size, self.labels, rng,
                                 self.augment)[0] for i in uidx]
            item["unlabeled"] = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)
        return item
