"""Safe reading and writing of face images and label-map PNGs.

Every reader here either returns a clean array or raises :class:`BadImageError` with a
one-line reason that names the problem (truncated, not an image, empty, too large, ...).
Nothing is ever decoded past ``MAX_PIXELS`` (Pillow decompression bombs are refused).
"""
from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import FacetError

MAX_PIXELS = 40_000_000
"""Largest image accepted, in pixels (a 6000 x 6000 photo fits; bombs do not)."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class BadImageError(FacetError, ValueError):
    """An input file is not a usable image; ``str(err)`` is the reason."""


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise BadImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise BadImageError(f"image too large: {w}x{h} pixels (limit {max_pixels})")
            img.load()
    except BadImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise BadImageError(f"decompression bomb refused: {err}") from None
    except UnidentifiedImageError:
        raise BadImageError("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise BadImageError(f"corrupt or truncated image: {err}") from None
    if w == 0 or h == 0:
        raise BadImageError("image has no pixels")
    return img


def read_bytes(source: str | os.PathLike | bytes) -> bytes:
    """The raw bytes of a path, or ``source`` itself when it already is bytes."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    return Path(source).read_bytes()


def decode_image(source: str | os.PathLike | bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a photo to ``H x W x 3`` uint8 RGB (EXIF rotation ignored; alpha dropped)."""
    img = _open_checked(read_bytes(source), max_pixels)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def image_size(source: str | os.PathLike | bytes, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of a valid image; raises :class:`BadImageError` otherwise."""
    return _open_checked(read_bytes(source), max_pixels).size


def decode_label_png(source: str | os.PathLike | bytes, num_classes: int,
                     size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a label-map PNG (mode L or P) to ``H x W`` uint8 ids.

    ``size`` is the expected ``(width, height)``; ``num_classes`` bounds the ids.
    """
    data = read_bytes(source)
    img = _open_checked(data, MAX_PIXELS)
    if img.format != "PNG":
        raise BadImageError(f"label maps must be PNG, got {img.format}")
    if img.mode not in ("L", "P"):
        raise BadImageError(f"label-map PNG must be single-channel (mode L or P), got mode {img.mode}")
    if size is not None and img.size != tuple(size):
        raise BadImageError(f"label map is {img.size[0]}x{img.size[1]}, expected {size[0]}x{size[1]}")
    arr = np.asarray(img, dtype=np.uint8).copy()
    top = int(arr.max(initial=0))
    if top >= num_classes:
        raise BadImageError(f"label id {top} out of range (0..{num_classes - 1})")
    return arr


def encode_label_png(label_map: np.ndarray) -> bytes:
    """``H x W`` uint8 ids → lossless PNG bytes (mode L)."""
    if label_map.ndim != 2 or label_map.dtype != np.uint8:
        raise ValueError(f"label map must be 2-D uint8, got {label_map.shape} {label_map.dtype}")
    buf = io.BytesIO()
    Image.fromarray(label_map, mode="L").save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def resize_labels(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``H x W`` uint8 label map to ``size = (width, height)``."""
    if (label.shape[1], label.shape[0]) == tuple(size):
        return label
    return np.asarray(Image.fromarray(label).resize(size, Image.NEAREST), dtype=np.uint8)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``H x W x 3`` uint8 image to ``size = (width, height)``."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), dtype=np.uint8)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
