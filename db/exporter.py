"""``export OUT``: labelled images as a CelebAMask-HQ tree (a folder, or a ``.zip`` of one).

Layout written (``k`` = the image's export id, kept from a CelebAMask-HQ import)::

    CelebA-HQ-img/{k}.jpg                        original bytes for JPEG sources, else JPEG q95
    CelebAMask-HQ-mask-anno/{k//2000}/{k:05d}_{name}.png
                                                 512x512 RGB, 0/255 on all three channels, one
                                                 file per class present (none for an absent one)
    CelebAMask-HQ-mask/{k}.png                   merged label map, mode L, 512x512, pixel = id
    mapping.csv                                  header "k,source_name,sha256,split": the image's
                                                 original file name and content hash per k
    train.txt, val.txt, test.txt                 one k per line, ascending

Per-class masks are 3-channel like the originals, so ``cv2.imread(p)[:, :, 0]`` (``g_mask.py``)
and PIL readers that index a channel both read them right. Label maps that are not 512x512
are resized to 512x512 with nearest neighbour; import → export is lossless for 512x512 maps
(every map imported from a CelebAMask-HQ tree).

``status`` picks images by their latest main-line revision: ``approved`` (it is approved),
``submitted`` (submitted or approved), ``any`` (any state). Unlabelled images never go out.
"""
from __future__ import annotations

import csv
import io
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.celebamask import MASK_SIZE, anno_relpath, image_relpath, merged_relpath, split_label_map
from core.errors import FacetError
from core.imageio import BadImageError, decode_image, decode_label_png, encode_label_png
from core.labels import CELEBAMASK, LabelSet
from db.images import SPLITS, image_file, images_with_latest
from db.importer import MAPPING_FILE
from db.models import Image, Revision, RevisionState
from db.settings import Settings

EXPORT_STATUSES: tuple[str, ...] = ("approved", "submitted", "any")
_WANTED: dict[str, tuple[RevisionState, ...]] = {
    "approved": (RevisionState.approved,),
    "submitted": (RevisionState.submitted, RevisionState.approved),
    "any": tuple(RevisionState),
}
JPEG_QUALITY = 95


@dataclass
class ExportReport:
    """What an export wrote: image count, per-class mask files, images per split, where."""

    out: Path
    images: int = 0
    class_files: int = 0
    splits: dict[str, int] = field(default_factory=lambda: {s: 0 for s in SPLITS})

    def line(self) -> str:
        per_split = ", ".join(f"{s} {n}" for s, n in self.splits.items())
        return (f"exported {self.images} images ({self.class_files} per-class masks; {per_split}) "
                f"to {self.out}")


def select_for_export(session: Session, status: str = "submitted") -> list[tuple[Image, Revision]]:
    """Images (by ``k``) whose latest main-line revision matches ``status``, with that revision."""
    if status not in EXPORT_STATUSES:
        raise FacetError(f"unknown export status {status!r} (expected one of "
                         f"{', '.join(EXPORT_STATUSES)})")
    wanted = _WANTED[status]
    return [(img, rev) for img, rev in images_with_latest(session)
            if rev is not None and rev.state in wanted]


def export_label_map(png: bytes, labels: LabelSet = CELEBAMASK) -> np.ndarray:
    """A stored label PNG → ``512 x 512`` uint8 ids (nearest-neighbour resize when needed)."""
    label_map = decode_label_png(png, labels.num_classes)
    if label_map.shape != (MASK_SIZE, MASK_SIZE):
        resized = PILImage.fromarray(label_map, mode="L").resize((MASK_SIZE, MASK_SIZE),
                                                                  PILImage.Resampling.NEAREST)
        label_map = np.asarray(resized, dtype=np.uint8).copy()
    return label_map


def class_mask_png(mask: np.ndarray) -> bytes:
    """``H x W`` 0/255 uint8 mask → PNG bytes, RGB with the mask on every channel."""
    buf = io.BytesIO()
    PILImage.fromarray(np.repeat(mask[:, :, None], 3, axis=2), mode="RGB").save(buf, format="PNG")
    return buf.getvalue()


def export_jpeg(data: bytes) -> bytes:
    """JPEG bytes for an image file: ``data`` itself when it is a JPEG, else re-encoded (q95)."""
    if data.startswith(b"\xff\xd8\xff"):
        return data
    buf = io.BytesIO()
    PILImage.fromarray(decode_image(data), mode="RGB").save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


class _Writer:
    """Writes relative paths into a staging folder or a zip; :meth:`finish` moves it to ``out``."""

    def __init__(self, out: Path, as_zip: bool) -> None:
        self.out, self.as_zip = out, as_zip
        out.parent.mkdir(parents=True, exist_ok=True)
        if as_zip:
            fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".partial")
            os.close(fd)
            self.staging = Path(tmp)
            self.staging.chmod(0o644)  # mkstemp makes it private; the export is for sharing
            self.zip: zipfile.ZipFile | None = zipfile.ZipFile(self.staging, "w")
        else:
            self.staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
            self.staging.chmod(0o755)
            self.zip = None

    def write(self, rel: str, data: bytes) -> None:
        if self.zip is not None:
            method = zipfile.ZIP_DEFLATED if rel.endswith(".txt") or rel.endswith(".csv") \
                else zipfile.ZIP_STORED
            self.zip.writestr(rel, data, compress_type=method)
        else:
            path = self.staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def finish(self) -> None:
        if self.zip is not None:
            self.zip.close()
        os.replace(self.staging, self.out)

    def abort(self) -> None:
        """Remove the staging file or folder; never raises (closing a zip on a full disk
        would, writing its directory)."""
        if self.zip is not None:
            try:
                self.zip.close()
            except (OSError, ValueError):
                pass
            self.staging.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.staging, ignore_errors=True)


def _check_out(out: Path, as_zip: bool) -> None:
    if as_zip and out.is_dir():
        raise FacetError(f"{out}: is a folder; --zip writes a file")
    if not as_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FacetError(f"{out}: already exists and is not an empty folder")


def _write_lists(writer: _Writer, rows: list[tuple[Image, Revision]]) -> None:
    buf = io.StringIO()
    table = csv.writer(buf, lineterminator="\n")
    table.writerow(["k", "source_name", "sha256", "split"])
    for img, _ in rows:
        table.writerow([img.k, img.source_name, img.sha256, img.split])
    writer.write(MAPPING_FILE, buf.getvalue().encode("utf-8"))
    for split in SPLITS:
        ks = [str(img.k) for img, _ in rows if img.split == split]
        writer.write(f"{split}.txt", "".join(k + "\n" for k in ks).encode("ascii"))


def export_dataset(session: Session, settings: Settings, out: str | os.PathLike, *,
                   status: str = "submitted", as_zip: bool = False,
                   labels: LabelSet = CELEBAMASK, progress: bool = False) -> ExportReport:
    """Write the images picked by ``status`` to ``out`` (a new folder, or a zip file).

    The result appears at ``out`` only when complete (written beside it, then renamed); a
    folder ``out`` must be absent or empty, an existing zip file is replaced. Raises
    :class:`FacetError` for a bad ``status``/``out``, a stored file that cannot be read, or a
    write that fails (the disk is full: "no space left on device"); then nothing new is left
    at or beside ``out`` (an existing zip there stays as it was).
    """
    out = Path(out)
    rows = select_for_export(session, status)
    _check_out(out, as_zip)
    report = ExportReport(out)
    try:
        writer = _Writer(out, as_zip)
    except OSError as err:
        raise _write_error(out, err) from None
    try:
        for img, rev in tqdm(rows, desc="export", unit="img", file=sys.stderr, disable=not progress):
            try:
                jpeg = export_jpeg(image_file(settings, img).read_bytes())
                label_map = export_label_map(rev.label_png, labels)
            except (BadImageError, OSError) as err:
                raise FacetError(f"image {img.id} (k={img.k}, {img.source_name}): {err}") from None
            writer.write(image_relpath(img.k), jpeg)
            for name, mask in split_label_map(label_map, labels).items():
                writer.write(anno_relpath(img.k, name), class_mask_png(mask))
                report.class_files += 1
            writer.write(merged_relpath(img.k), encode_label_png(label_map))
            report.images += 1
            report.splits[img.split] = report.splits.get(img.split, 0) + 1
        _write_lists(writer, rows)
        writer.finish()
    except OSError as err:  # reading sources is handled above: this is a write
        writer.abort()
        raise _write_error(out, err) from None
    except BaseException:
        writer.abort()
        raise
    return report


def _write_error(out: Path, err: OSError) -> FacetError:
    """The one-line error of a failed export write (``err.strerror``: "no space left on
    device" when the disk is full)."""
    why = (err.strerror or str(err)).lower()
    return FacetError(f"cannot write the export {out}: {why}; nothing was exported")
