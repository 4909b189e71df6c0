"""Augmentations a face parser needs, on numpy arrays: one random affine map (scale, rotation,
shift) applied to the image (bilinear) and the label map (nearest) together, a horizontal flip
that swaps the l_/r_ classes (:meth:`LabelSet.flip`), and colour and blur on the image only."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from core.labels import LabelSet


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (all off with :meth:`none`)."""

    scale: tuple[float, float] = (0.8, 1.25)
    rotation_deg: float = 15.0
    shift: float = 0.08           # fraction of the image side
    flip_prob: float = 0.5
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.3
    channel_gain: float = 0.1     # per-channel gain (white balance)
    blur_prob: float = 0.3
    blur_radius: tuple[float, float] = (0.3, 1.5)

    @classmethod
    def none(cls) -> "AugmentConfig":
        return cls(scale=(1.0, 1.0), rotation_deg=0.0, shift=0.0, flip_prob=0.0, brightness=0.0,
                   contrast=0.0, saturation=0.0, channel_gain=0.0, blur_prob=0.0)


def resize_pair(image: np.ndarray, label: np.ndarray | None,
                size: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``H x W x 3`` uint8 and ``H x W`` uint8 → ``size x size`` (bilinear / nearest)."""
    img = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    if label is None:
        return img, None
    lab = np.asarray(Image.fromarray(label).resize((size, size), Image.NEAREST))
    return img, lab


def flip_pair(image: np.ndarray, label: np.ndarray | None,
              labels: LabelSet) -> tuple[np.ndarray, np.ndarray | None]:
    """Mirror left-right; the label map also swaps l_/r_ classes."""
    img = np.ascontiguousarray(image[:, ::-1])
    return img, (None if label is None else np.ascontiguousarray(labels.flip(label)))


def _affine(h: int, w: int, size: int, scale: float, angle: float, dx: float,
            dy: float) -> tuple[float, ...]:
    """PIL affine coefficients mapping output pixel (x, y) of a ``size x size`` crop to input."""
    sx, sy = w / size / scale, h / size / scale
    cos, sin = math.cos(angle), math.sin(angle)
    a, b = cos * sx, -sin * sx
    d, e = sin * sy, cos * sy
    cx_out = cy_out = size / 2.0
    c = w / 2.0 + dx * w - a * cx_out - b * cy_out
    f = h / 2.0 + dy * h - d * cx_out - e * cy_out
    return (a, b, c, d, e, f)


def _colour(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float32)
    if cfg.brightness:
        x *= rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
    if cfg.contrast:
        mean = x.mean()
        x = (x - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.saturation:
        grey = x.mean(axis=2, keepdims=True)
        x = (x - grey) * rng.uniform(1 - cfg.saturation, 1 + cfg.saturation) + grey
    if cfg.channel_gain:
        x *= rng.uniform(1 - cfg.channel_gain, 1 + cfg.channel_gain, size=3).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def augment_pair(image: np.ndarray, label: np.ndarray | None, size: int, labels: LabelSet,
                 rng: np.random.Generator,
                 cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray | None]:
    """One random augmentation of ``image: H x W x 3`` uint8 (and ``label: H x W`` uint8, or
    ``None`` for an unlabelled image) → ``size x size x 3`` and ``size x size``.

    Pixels brought in from outside the image are black and background (id 0).
    """
    h, w = image.shape[:2]
    if label is not None and label.shape != (h, w):
        raise ValueError(f"image is {w}x{h} but its label map is {label.shape[1]}x{label.shape[0]}")
    if rng.random() < cfg.flip_prob:
        image, label = flip_pair(image, label, labels)
    scale = math.exp(rng.uniform(math.log(cfg.scale[0]), math.log(cfg.scale[1])))
    angle = math.radians(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    dx, dy = rng.uniform(-cfg.shift, cfg.shift, size=2) if cfg.shift else (0.0, 0.0)
    if scale == 1.0 and angle == 0.0 and dx == 0.0 and dy == 0.0:
        img, lab = resize_pair(image, label, size)
    else:
        coeffs = _affine(h, w, size, scale, angle, dx, dy)
        img = np.asarray(Image.fromarray(image).transform(
            (size, size), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=(0, 0, 0)))
        lab = None if label is None else np.asarray(Image.fromarray(label).transform(
            (size, size), Image.AFFINE, coeffs, resample=Image.NEAREST, fillcolor=0))
    img = _colour(img, cfg, rng)
    if cfg.blur_prob and rng.random() < cfg.blur_prob:
        radius = rng.uniform(*cfg.blur_radius)
        img = np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))
    return np.ascontiguousarray(img), (None if lab is None else np.ascontiguousarray(lab))
