"""Synthetic faces written as a CelebAMask-HQ tree (``python app.py synth``)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from core.celebamask import MASK_SIZE, anno_relpath, image_relpath, merged_relpath, split_label_map
from core.errors import FacetError
from core.imageio import encode_label_png, write_atomic
from core.labels import CELEBAMASK, LabelSet
from model.synth.face import check_arguments, face_seed, render_face

JPEG_QUALITY = 95


def _jpeg(image: np.ndarray, size: int) -> bytes:
    img = Image.fromarray(image)
    if img.size != (size, size):
        img = img.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def write_synth_tree(out: Path, count: int, seed: int = 0, style: str = "studio", size: int = 512,
                     start_k: int = 0, progress: bool = True,
                     labels: LabelSet = CELEBAMASK) -> list[int]:
    """Write ``count`` faces as a CelebAMask-HQ tree under ``out``; returns their ids ``k``.

    Files per face ``k`` (``k = start_k ...``): ``CelebA-HQ-img/{k}.jpg`` (``size`` x ``size``,
    JPEG quality 95), one 512 x 512 mode-L 0/255 PNG per present class under
    ``CelebAMask-HQ-mask-anno/{k // 2000}/`` and the merged label map ``CelebAMask-HQ-mask/{k}.png``.
    Label maps are always rendered exactly at 512; another ``size`` only resizes the photo.
    Per-class files of absent classes left by an earlier run are removed. Same arguments,
    same bytes. Raises :class:`FacetError` on bad arguments.
    """
    out = Path(out)
    check_arguments(seed, style, size)
    if count < 1:
        raise FacetError(f"--count must be at least 1, got {count}")
    if start_k < 0:
        raise FacetError(f"start k must be >= 0, got {start_k}")
    if out.exists() and not out.is_dir():
        raise FacetError(f"{out} exists and is not a folder")
    ks = list(range(start_k, start_k + count))
    for k in tqdm(ks, desc=f"synth {style}", unit="face", file=sys.stderr, disable=not progress):
        image, label_map = render_face(face_seed(seed, k), MASK_SIZE, style, labels)
        write_atomic(out / image_relpath(k), _jpeg(image, size))
        masks = split_label_map(label_map, labels)
        for name in labels.names[1:]:
            path = out / anno_relpath(k, name)
            if name in masks:
                write_atomic(path, encode_label_png(masks[name]))
            else:
                path.unlink(missing_ok=True)
        write_atomic(out / merged_relpath(k), encode_label_png(label_map))
    return ks
