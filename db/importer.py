"""``import PATH``: bring a folder of images, a CelebAMask-HQ tree, or a ``.zip`` of either in.

What a path holds is found by walking it: every folder that contains ``CelebA-HQ-img`` is a
CelebAMask-HQ tree (its images keep their id ``k`` when free, its masks become label maps,
merged exactly as ``g_mask.py`` does, via :mod:`core.celebamask`); every other file with an
image suffix is a plain image. A tree's ``train.txt``/``val.txt``/``test.txt`` (one ``k`` a
line) set the split, and its ``mapping.csv`` (see :mod:`db.exporter`) the source file names.

Each bad file is reported with its reason and changes nothing: a sample whose mask is bad
adds neither image nor label. Samples are committed in batches; an image file is always
written before its row, so a crash leaves whole images only.
"""
from __future__ import annotations

import csv
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.celebamask import (ANNO_DIR, IMAGE_DIR, MASK_SIZE, MERGED_DIR, TreeSample,
                             load_sample_labels, parse_anno_name, scan_tree)
from core.errors import FacetError
from core.imageio import IMAGE_SUFFIXES, BadImageError, encode_label_png
from core.labels import CELEBAMASK, LabelSet
from db.archive import MAX_MEMBERS, MAX_TOTAL_BYTES, extracted_zip
from db.images import SPLITS, add_image
from db.models import Image, Origin, RevisionState
from db.revisions import save_revision
from db.settings import Settings

MAX_FILE_BYTES = 256 * 2**20
"""Largest image file read (bytes); bigger files are reported, never loaded."""
MAPPING_FILE = "mapping.csv"
"""Written by the exporter beside the image folders: columns ``k,source_name,sha256,split``."""
_SKIP_DIRS = ("__MACOSX",)


@dataclass
class ImportReport:
    """Counts and names from one import. Paths are relative to the imported folder or zip."""

    imported: int = 0
    with_labels: int = 0
    duplicates: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The summary line, then ``"  path: reason"`` per bad file."""
        head = (f"imported {self.imported} images ({self.with_labels} with labels), "
                f"skipped {len(self.duplicates)} duplicates, {len(self.bad)} bad files")
        return [head] + [f"  {path}: {reason}" for path, reason in self.bad]

    @property
    def exit_code(self) -> int:
        """0 when anything landed or nothing was bad; 2 when every file was bad."""
        return 0 if self.imported or not self.bad else 2


@dataclass(frozen=True)
class _Item:
    """One image to import: its file, display name, and (for trees) its sample and split."""

    path: Path
    name: str
    sample: TreeSample | None = None
    split: str | None = None
    source_name: str | None = None


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_splits(tree: Path) -> dict[int, str]:
    """``k → split`` from a tree's split lists (missing lists contribute nothing)."""
    out: dict[int, str] = {}
    for split in SPLITS:
        path = tree / f"{split}.txt"
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").split():
            if not line.isdigit():
                raise FacetError(f"{path.name}: not a list of ids (found {line[:40]!r})")
            out[int(line)] = split
    return out


def _read_mapping(tree: Path) -> dict[int, str]:
    """``k → original file name`` from a tree's :data:`MAPPING_FILE`, when it has one."""
    path = tree / MAPPING_FILE
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return {int(row["k"]): row["source_name"] for row in rows}
    except (KeyError, TypeError, ValueError):
        raise FacetError(f"{path.name}: expected the columns k,source_name") from None


def _orphan_label_files(tree: Path, ks: set[int], root: Path) -> list[tuple[str, str]]:
    """Files in the label folders that belong to no image of the tree, with the reason."""
    bad = []
    anno = tree / ANNO_DIR
    for path in sorted(anno.rglob("*")) if anno.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        parsed = parse_anno_name(path.name)
        if parsed is None:
            bad.append((_rel(path, root), "not a mask file name ({k:05d}_{class}.png)"))
        elif parsed[0] not in ks:
            bad.append((_rel(path, root), f"mask without an image ({IMAGE_DIR}/{parsed[0]}.jpg)"))
    merged = tree / MERGED_DIR
    for path in sorted(merged.iterdir()) if merged.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix != ".png" or not path.stem.isdigit():
            bad.append((_rel(path, root), "not a label-map file name ({k}.png)"))
        elif int(path.stem) not in ks:
            bad.append((_rel(path, root), f"label map without an image ({IMAGE_DIR}/{path.stem}.jpg)"))
    return bad


def _tree_items(tree: Path, root: Path, bad: list[tuple[str, str]]) -> list[_Item]:
    samples = scan_tree(tree)
    splits, names = _read_splits(tree), _read_mapping(tree)
    bad.extend(_orphan_label_files(tree, {s.k for s in samples if s.k >= 0}, root))
    return [_Item(s.image, _rel(s.image, root), s, splits.get(s.k), names.get(s.k))
            for s in samples]


def plan(root: Path) -> tuple[list[_Item], list[tuple[str, str]]]:
    """Walk ``root``: tree samples first (by tree, then ``k``), then plain images; plus bad files."""
    trees: list[_Item] = []
    plain: list[_Item] = []
    bad: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if IMAGE_DIR in dirnames:
            trees.extend(_tree_items(here, root, bad))
            dirnames[:] = []
            continue
        for d in sorted(dirnames):
            if d in (ANNO_DIR, MERGED_DIR):
                bad.append((_rel(here / d, root) + "/", f"label folder without {IMAGE_DIR}/ beside it"))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and d not in _SKIP_DIRS + (ANNO_DIR, MERGED_DIR))
        for name in sorted(filenames):
            path = here / name
            if name.startswith("."):
                continue
            if path.suffix.lower() in IMAGE_SUFFIXES:
                plain.append(_Item(path, _rel(path, root)))
            else:
                bad.append((_rel(path, root), f"unsupported file type {path.suffix or '(none)'!r} "
                                              f"(expected {', '.join(IMAGE_SUFFIXES)})"))
    return trees + plain, bad


def _order(session: Session, items: list[_Item]) -> list[_Item]:
    """Samples whose ``k`` is free go first, so fresh ids never take a ``k`` a sample brings."""
    taken = set(session.scalars(select(Image.k)))
    keep, later = [], []
    for item in items:
        k = item.sample.k if item.sample is not None else -1
        if k >= 0 and k not in taken:
            taken.add(k)
            keep.append(item)
        else:
            later.append(item)
    return keep + later


class _BadFile(Exception):
    """A file of a sample that cannot be imported: its path (relative) and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _sample_labels(sample: TreeSample, root: Path, labels: LabelSet) -> np.ndarray | None:
    """The sample's ``512 x 512`` label map (``None`` if unlabelled); :class:`_BadFile` names
    the mask file at fault (:func:`load_sample_labels` prefixes its messages with the name)."""
    try:
        label_map = load_sample_labels(sample, labels)
    except (BadImageError, ValueError) as err:
        msg = str(err)
        for path in [*sample.anno_files.values(), sample.merged]:
            if path is not None and msg.startswith(f"{path.name}: "):
                raise _BadFile(_rel(path, root), msg[len(path.name) + 2:]) from None
        raise _BadFile(_rel(sample.image, root), msg) from None
    if label_map is not None and label_map.shape != (MASK_SIZE, MASK_SIZE):
        h, w = label_map.shape
        where = sample.merged if sample.merged is not None else sample.image
        raise _BadFile(_rel(where, root), f"label map is {w}x{h}, expected {MASK_SIZE}x{MASK_SIZE}")
    return label_map


def _import_item(session: Session, settings: Settings, item: _Item, root: Path,
                 labels: LabelSet, report: ImportReport) -> None:
    label_map = None
    if item.sample is not None:
        try:
            label_map = _sample_labels(item.sample, root, labels)
        except _BadFile as err:
            report.bad.append((err.path, err.reason))
            return
    try:
        if item.path.stat().st_size > MAX_FILE_BYTES:
            report.bad.append((item.name, f"file too large: {item.path.stat().st_size} bytes "
                                          f"(limit {MAX_FILE_BYTES})"))
            return
        data = item.path.read_bytes()
        result = add_image(session, settings, data, item.source_name or item.name,
                           source_k=item.sample.k if item.sample and item.sample.k >= 0 else None,
                           label_size=(MASK_SIZE, MASK_SIZE) if item.sample else None,
                           split=item.split)
    except (BadImageError, OSError) as err:
        report.bad.append((item.name, str(err) if isinstance(err, BadImageError)
                           else f"cannot read: {err.strerror or err}"))
        return
    if not result.created:
        report.duplicates.append(item.name)
        return
    report.imported += 1
    if label_map is not None:
        save_revision(session, result.image.id, encode_label_png(label_map), author_id=None,
                      base_revision=None, state=RevisionState.approved, origin=Origin.imported,
                      num_classes=labels.num_classes)
        report.with_labels += 1


def import_folder(session: Session, settings: Settings, root: Path, *,
                  labels: LabelSet = CELEBAMASK, progress: bool = False,
                  batch_size: int = 50, report: ImportReport | None = None) -> ImportReport:
    """Import everything under the folder ``root``; commits every ``batch_size`` images."""
    report = report or ImportReport()
    items, bad = plan(root)
    report.bad.extend(bad)
    bar: Iterable[_Item] = tqdm(_order(session, items), desc="import", unit="img",
                                file=sys.stderr, disable=not progress)
    for i, item in enumerate(bar, start=1):
        _import_item(session, settings, item, root, labels, report)
        if i % batch_size == 0:
            session.commit()
    session.commit()
    return report


def import_path(session: Session, settings: Settings, path: str | os.PathLike, *,
                labels: LabelSet = CELEBAMASK, progress: bool = False,
                batch_size: int = 50, max_members: int = MAX_MEMBERS,
                max_total: int = MAX_TOTAL_BYTES) -> ImportReport:
    """Import a folder, a ``.zip`` (extracted safely inside the data dir), or one image file.

    Raises :class:`FacetError` when ``path`` does not exist or is not a valid zip, and
    :class:`db.archive.ArchiveTooLarge` (importing nothing) for a zip of more than
    ``max_members`` entries or ``max_total`` uncompressed bytes.
    """
    path = Path(path)
    if not path.exists():
        raise FacetError(f"{path}: no such file or folder")
    if path.is_dir() and (path.name in (ANNO_DIR, MERGED_DIR) or path.parent.name == ANNO_DIR):
        raise FacetError(f"{path} holds the label masks of a CelebAMask-HQ tree, not faces: "
                         f"import the tree's root (the folder with {IMAGE_DIR}/) instead")
    if path.is_dir():
        return import_folder(session, settings, path.resolve(), labels=labels,
                             progress=progress, batch_size=batch_size)
    if path.suffix.lower() == ".zip":
        report = ImportReport()
        with extracted_zip(path, settings.data_dir / "tmp", max_total, max_members) as ex:
            report.bad.extend((r.name, r.reason) for r in ex.refused)
            return import_folder(session, settings, ex.root, labels=labels, progress=progress,
                                 batch_size=batch_size, report=report)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        report = ImportReport()
        _import_item(session, settings, _Item(path, path.name), path.parent, labels, report)
        session.commit()
        return report
    raise FacetError(f"{path}: expected a folder, a .zip or an image file "
                     f"({', '.join(IMAGE_SUFFIXES)})")
