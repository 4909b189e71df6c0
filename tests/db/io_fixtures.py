"""Helpers that build real files for the import/export tests: photos, masks, trees, bad files.

Nothing here uses Facet's own writers, so the tests compare Facet against files made
independently (PIL and a hand-written PNG).
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

G_MASK_LABELS = ["skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                 "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
"""The class order of the official ``g_mask.py`` (id = index + 1), copied from it by hand."""

SIZE = 512


def photo_bytes(seed: int, size: tuple[int, int] = (48, 40), fmt: str = "JPEG") -> bytes:
    """A small random photo (``size`` = width, height), distinct for each seed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buf, format=fmt)
    return buf.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    """Lossless PNG of an ``H x W`` (mode L) or ``H x W x 3`` (RGB) uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def face_masks(k: int) -> dict[str, np.ndarray]:
    """Overlapping per-class boolean ``512 x 512`` masks for sample ``k``, with thin parts.

    The necklace (``neck_l``) is a one-pixel-wide line drawn across the neck; the neck mask
    has a gap where part of it shows (elsewhere the later ``neck`` id paints over it, as in
    ``g_mask.py``). The earring is one pixel. Shapes shift with ``k`` so samples differ.
    """
    d = k % 13
    m = {name: np.zeros((SIZE, SIZE), dtype=bool) for name in G_MASK_LABELS}
    m["skin"][100 + d:400, 120:390] = True
    m["hair"][40:190 + d, 90:420] = True          # over the forehead (hair id > skin id)
    m["nose"][220:280, 235 + d:275] = True
    m["eye_g"][170:215, 150:360] = True           # glasses under the eyes (eye ids are later)
    m["l_eye"][185:200, 170:220] = True
    m["r_eye"][185:200, 290:340 - d] = True
    m["l_brow"][160:170, 165:225] = True
    m["r_brow"][160:170, 285:345] = True
    m["l_ear"][200:280, 100:125] = True
    m["mouth"][315:325, 230:290] = True
    m["u_lip"][305:318, 225:295] = True
    m["l_lip"][322:340, 225:295] = True
    if k % 2 == 0:
        m["hat"][20:90, 80:430] = True            # over the hair
        m["r_ear"][200:280, 385:410] = True
    m["ear_r"][290, 110 + d] = True               # one-pixel earring
    m["neck"][395:470, 190:330] = True
    m["neck"][440, 200:260] = False               # gap where the necklace shows
    m["neck_l"][440, 150 + d:360] = True          # one pixel thin, partly under the neck
    m["neck_l"][420:470, 300] = True              # vertical strand, hidden by the neck
    m["cloth"][460:SIZE, 40:480] = True           # over the neck's bottom rows
    return {name: mask for name, mask in m.items() if mask.any()}


def g_mask_merge(masks: dict[str, np.ndarray]) -> np.ndarray:
    """What ``g_mask.py`` computes from boolean masks: paint in its order, later wins."""
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for idx, label in enumerate(G_MASK_LABELS):
        if label in masks:
            out[masks[label]] = idx + 1
    return out


def g_mask_read(anno_root: Path, k: int) -> np.ndarray:
    """Independent ``g_mask.py`` on files: read each per-class PNG the way ``cv2.imread`` does
    (3 channels), test channel 0 != 0, paint in the official order."""
    out = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for idx, label in enumerate(G_MASK_LABELS):
        path = anno_root / str(k // 2000) / f"{str(k).rjust(5, '0')}_{label}.png"
        if path.exists():
            im = np.array(Image.open(path).convert("RGB"))
            out[im[:, :, 0] != 0] = idx + 1
    return out


def write_tree(root: Path, ks: list[int], merged_only: bool = False,
               gray_every: int = 2) -> dict[int, np.ndarray]:
    """A CelebAMask-HQ tree at ``root`` with a photo and labels per ``k``; returns the expected
    merged label maps. Per-class files are 3-channel 0/255 like the originals, except every
    ``gray_every``-th sample's, which are single-channel. ``merged_only`` writes
    ``CelebAMask-HQ-mask/{k}.png`` instead of per-class files."""
    expected = {}
    (root / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(ks):
        (root / "CelebA-HQ-img" / f"{k}.jpg").write_bytes(photo_bytes(1000 + k))
        masks = face_masks(k)
        expected[k] = g_mask_merge(masks)
        if merged_only:
            (root / "CelebAMask-HQ-mask").mkdir(exist_ok=True)
            (root / "CelebAMask-HQ-mask" / f"{k}.png").write_bytes(png_bytes(expected[k]))
            continue
        folder = root / "CelebAMask-HQ-mask-anno" / str(k // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        for name, mask in masks.items():
            arr = mask.astype(np.uint8) * 255
            if i % gray_every != 0:
                arr = np.repeat(arr[:, :, None], 3, axis=2)
            (folder / f"{k:05d}_{name}.png").write_bytes(png_bytes(arr))
    return expected


def bomb_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid 1-bit grey PNG of ``width x height`` (100 M pixels by default) that is a few KB
    on disk: a decompression bomb."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    row = b"\x00" * (1 + (width + 7) // 8)
    pixels = zlib.compress(row * height, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))


def write_broken_folder(folder: Path) -> dict[str, str]:
    """One good photo plus broken files; returns ``{bad file name: word its reason must hold}``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "good.jpg").write_bytes(photo_bytes(7))
    whole = photo_bytes(8, size=(200, 160))
    (folder / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (folder / "notes.jpg").write_text("this is not an image\n")
    (folder / "empty.png").write_bytes(b"")
    (folder / "bomb.png").write_bytes(bomb_png())
    return {"truncated.jpg": "truncated", "notes.jpg": "not an image", "empty.png": "empty",
            "bomb.png": "decompression bomb"}
