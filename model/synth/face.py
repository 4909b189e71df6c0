"""Synthetic, photo-like faces with exact label maps, for demos, tests and benchmarks.

A face is first drawn as a hard-edged map of materials (skin, iris, teeth, lens, sleeve, ...;
:mod:`model.synth.shapes`); its label map is a lookup of that map, so it is exact by
construction. The photo is then rendered from the same map (:mod:`model.synth.render`):
textures, light, shadows, highlights, blur and noise. Colours are drawn from overlapping
distributions, so a parser has to use shape and context, not colour alone.

Left and right: ``l_eye``, ``l_brow`` and ``l_ear`` are on the image's LEFT (smaller x) as
you look at the picture. A horizontal flip of the image with :meth:`LabelSet.flip` of the
labels gives another valid face.

Styles (:data:`STYLES`): ``studio`` (the default) and ``wild``, the shifted domain with
hands and face masks over most faces, harsh coloured side light, more pose, more blur and
noise, cluttered backgrounds and JPEG artefacts.
"""
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
from model.synth.materials import label_lut
from model.synth.render import render_photo
from model.synth.shapes import draw_materials
from model.synth.spec import STYLES, sample_spec


MIN_SIZE = 32
MAX_SIZE = 4096
JPEG_QUALITY = 95


def _check(seed: int, style: str, size: int) -> None:
    if style not in STYLES:
        raise FacetError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
    if seed < 0:
        raise FacetError(f"seed must be >= 0, got {seed}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise FacetError(f"size must be {MIN_SIZE} to {MAX_SIZE} pixels, got {size}")


def render_face(seed: int, size: int = 512, style: str = "studio",
                labels: LabelSet = CELEBAMASK) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic face: ``size x size x 3`` uint8 RGB and its ``size x size`` uint8 label map.

    Deterministic for ``(seed, size, style)``; the same seed at another size is the same face.
    Occluding hands and face masks get the ``hand``/``mask`` classes when ``labels`` has them
    (``LabelSet.celebamask(extras=True)``) and are background (0) otherwise, as CelebAMask-HQ
    leaves them unlabelled. The photo does not depend on ``labels``.
    """
    _check(seed, style, size)
    spec_seq, texture_seq = np.random.SeedSequence([seed, STYLES.index(style)]).spawn(2)
    spec = sample_spec(np.random.default_rng(spec_seq), style)
    materials = draw_materials(spec, size)
    image = render_photo(materials, spec, np.random.default_rng(texture_seq))
    return image, label_lut(labels)[materials]


def face_seed(seed: int, k: int) -> int:
    """The seed of face ``k`` in a tree written with ``seed`` (independent of the face count)."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0] >> 1)


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
    _check(seed, style, size)
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
