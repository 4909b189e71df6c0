"""The photo of a synthetic face, rendered from its material map.

Albedo per material with texture (pores and blotches on skin, strands and sheen in hair,
weave, folds and stripes on cloth), a background (flat, gradient, textured or cluttered
with blurred objects), lighting from :mod:`model.synth.light`, then the camera: exposure,
vignette, lens blur, sensor noise and, in the wild, JPEG artefacts.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from model.synth.colors import any_colour
from model.synth.fields import blur_image, gaussian_noise, smooth_noise
from model.synth.light import shade
from model.synth.materials import MAT, lut
from model.synth.spec import FaceSpec

_SKIN = {"skin": 1.0, "nose": 1.0, "l_ear": 1.0, "r_ear": 1.0, "neck": 1.0, "hand": 1.0}
FINE = lut({**{k: 0.035 for k in _SKIN}, "hair": 0.08, "hair_back": 0.08, "l_brow": 0.25,
            "r_brow": 0.25, "cloth": 0.05, "sleeve": 0.05, "hat": 0.07, "hat_band": 0.07,
            "mask": 0.03, "u_lip": 0.05, "l_lip": 0.05, "mouth": 0.1, "tongue": 0.06,
            "l_iris": 0.15, "r_iris": 0.15, "l_sclera": 0.02, "r_sclera": 0.02, "beard": 0.2})
"""Per-pixel grain (pores, weave), as a fraction of the albedo."""
MID = lut({**{k: 0.025 for k in _SKIN}, "hair": 0.1, "hair_back": 0.1, "cloth": 0.12,
           "sleeve": 0.12, "hat": 0.06, "mask": 0.04, "u_lip": 0.06, "l_lip": 0.06})
"""Blotches a few pixels wide (skin unevenness, cloth folds)."""
STRAND = lut({"hair": 0.22, "hair_back": 0.22, "l_brow": 0.12, "r_brow": 0.12, "beard": 0.15})
"""Strand texture radiating from the crown."""
PATTERN = lut({"cloth": 1.0, "sleeve": 1.0})
"""Stripes or checks (amplitude chosen per face)."""
GLOSS = lut({**{k: 0.07 for k in _SKIN}, "nose": 0.1, "hair": 0.06, "hair_back": 0.04,
             "u_lip": 0.12, "l_lip": 0.14, "tongue": 0.1, "frame": 0.15, "lens": 0.2,
             "mask": 0.02, "hat": 0.03, "cloth": 0.02, "nail": 0.15})
SHINE = lut({"nose": 0.18, "skin": 0.08, "u_lip": 0.25, "l_lip": 0.3, "l_sclera": 0.1,
             "r_sclera": 0.1, "l_iris": 0.25, "r_iris": 0.25, "frame": 0.6, "lens": 0.9,
             "earring": 1.0, "necklace": 1.0, "pendant": 1.0, "teeth": 0.15, "nail": 0.1,
             "hair": 0.05})
NEUTRAL_LIGHT = lut({"l_catchlight": 1.0, "r_catchlight": 1.0})
"""Materials that keep their colour whatever the light (catchlights are the light itself)."""


def _strands(spec: FaceSpec, size: int, flat_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hair strand texture plus a sheen band, radiating from the crown, at the pixels
    ``flat_idx`` (indices into the flattened ``size x size`` image)."""
    crown = spec.pose.side(np.array([[0.0, -1.4]]), size, depth=-0.2)[0]
    ys = (flat_idx // size).astype(np.float32) - np.float32(crown[1])
    xs = (flat_idx % size).astype(np.float32) - np.float32(crown[0])
    theta = np.arctan2(ys, xs)
    radius = np.sqrt(xs * xs + ys * ys) / np.float32(spec.pose.unit * size)
    if spec.hair.curly:  # curls: blobs a few pixels wide instead of radial strands
        strands = smooth_noise(rng, 70, size).ravel()[flat_idx] * np.float32(1.3)
    else:
        n = 720
        fine = rng.standard_normal(n).astype(np.float32)
        fine = (np.roll(fine, 1) + 2 * fine + np.roll(fine, -1)) / 2
        coarse = rng.standard_normal(n // 8).astype(np.float32)
        wave = np.float32(6) * np.sin(radius * np.float32(3))  # strands bend a little
        idx = ((theta + np.float32(np.pi)) * np.float32(n / (2 * np.pi)) + wave).astype(np.int32)
        strands = (fine.take(idx % n) * np.float32(0.7)
                   + coarse.take((idx // 8) % (n // 8)) * np.float32(0.6))
    sheen = np.exp(-((radius - np.float32(rng.uniform(0.6, 1.0))) / np.float32(0.18)) ** 2)
    return strands + np.float32(0.6) * sheen


def _pattern(spec: FaceSpec, size: int) -> np.ndarray:
    """``size x size`` stripes or checks of ±0.18 for the clothes (``1 x 1`` zeros when plain)."""
    b = spec.body
    if b.pattern == "plain":
        return np.zeros((1, 1), dtype=np.float32)
    period = b.pattern_period * spec.pose.unit * size
    y = np.arange(size, dtype=np.float32)[:, None]
    x = np.arange(size, dtype=np.float32)[None, :]
    c, s = np.float32(np.cos(b.pattern_angle)), np.float32(np.sin(b.pattern_angle))
    u = np.sign(np.sin((x * c + y * s) * np.float32(2 * np.pi / period)))
    if b.pattern == "checks":
        u = u * np.sign(np.sin((y * c - x * s) * np.float32(2 * np.pi / period)))
    return (u * np.float32(0.18)).astype(np.float32)


def background(spec: FaceSpec, size: int, rng: np.random.Generator) -> np.ndarray | None:
    """``3 x size x size`` albedo of the wall behind the person (None when flat: the
    material colour is the wall)."""
    c1 = spec.colours[MAT["background"]][:, None, None]
    if spec.background == "flat":
        return None
    c2 = np.clip(c1 * rng.uniform(0.45, 1.5, (3, 1, 1)), 0, 1).astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)
    ramp = np.float32(np.cos(a)) * t[None, :] + np.float32(np.sin(a)) * t[:, None]
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + np.float32(1e-6))
    img = c1 + (c2 - c1) * ramp
    if spec.background == "textured":
        img *= 1 + 0.12 * smooth_noise(rng, 8, size) + 0.05 * smooth_noise(rng, 48, size)
    elif spec.background == "cluttered":
        rgb8 = (np.clip(img, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
        canvas = Image.fromarray(np.ascontiguousarray(rgb8))
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(12, 40))):
            col = tuple(int(v) for v in any_colour(rng) * 255)
            x0, y0 = rng.uniform(-0.1, 1.0, 2) * size
            w, h = rng.uniform(0.03, 0.35, 2) * size
            kind = rng.integers(3)
            if kind == 0:
                draw.rectangle([x0, y0, x0 + w, y0 + h], fill=col)
            elif kind == 1:
                draw.ellipse([x0, y0, x0 + w, y0 + h], fill=col)
            else:
                draw.line([x0, y0, x0 + w, y0 + h], fill=col, width=max(1, int(w / 12)))
        img = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        blur = rng.uniform(1.0, 4.0) * size / 512  # the wall is out of focus
        img = np.stack([blur_image(np.ascontiguousarray(ch), blur) for ch in img])
    return img.astype(np.float32)


def texture(materials: np.ndarray, spec: FaceSpec, rng: np.random.Generator) -> np.ndarray:
    """``H x W`` float32 brightness factor around 1 from grain, blotches, strands, patterns."""
    size = materials.shape[0]
    tex = MID.take(materials) * smooth_noise(rng, 40, size)
    strand_amp = STRAND.take(materials).ravel()
    hairy = np.flatnonzero(strand_amp)
    tex.ravel()[hairy] += strand_amp[hairy] * _strands(spec, size, hairy, rng)
    if spec.body.pattern != "plain":
        tex += PATTERN.take(materials) * _pattern(spec, size)
    tex += FINE.take(materials) * gaussian_noise(rng, size)  # last: the only size-dependent draw
    tex += np.float32(1.0)
    return tex


def camera(rgb: np.ndarray, spec: FaceSpec, rng: np.random.Generator) -> np.ndarray:
    """``3 x H x W`` float image in [0, 1] → ``H x W x 3`` uint8: vignette, blur, noise, JPEG."""
    size = rgb.shape[1]
    if spec.light.vignette > 0:
        r = np.linspace(-1, 1, size, dtype=np.float32) ** 2
        rgb = rgb * (1 - np.float32(spec.light.vignette * 0.5) * (r[:, None] + r[None, :]))
    sigma = spec.blur_px * size / 512
    noise = gaussian_noise(rng, size) * np.float32(spec.noise / 255)
    chans = []
    for c in range(3):
        ch = blur_image(rgb[c], sigma) + noise
        if spec.chroma_noise > 0:
            ch += gaussian_noise(rng, size) * np.float32(spec.noise * spec.chroma_noise / 255)
        chans.append(ch)
    out = np.clip(np.stack(chans, axis=-1) * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)
    if spec.style == "wild" and rng.uniform() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(35, 75)))
        out = np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)
    return out


def render_photo(materials: np.ndarray, spec: FaceSpec, rng: np.random.Generator) -> np.ndarray:
    """``H x W x 3`` uint8 RGB photo of the material map ``materials`` (``H x W`` uint8)."""
    col = spec.colours.copy()
    if spec.extras.glasses == "clear":
        col[MAT["lens"]] = col[MAT["skin"]] * 0.93 + 0.04
    wall = background(spec, materials.shape[0], rng)  # first: its random draws do not depend on size
    tex = texture(materials, spec, rng)
    is_wall = materials == MAT["background"] if wall is not None else None
    s = shade(materials, spec)
    lt = spec.light
    exposure = np.float32(lt.exposure)
    highlight = (GLOSS.take(materials) * s.gloss + SHINE.take(materials) * s.shine) * np.float32(
        lt.specular * lt.exposure)
    neutral = np.flatnonzero(NEUTRAL_LIGHT.take(materials))  # catchlights keep their colour
    out = np.empty((3, *materials.shape), dtype=np.float32)
    for c in range(3):
        surface = col[:, c].take(materials) * tex
        if wall is not None:
            surface = np.where(is_wall, wall[c], surface)
        light = s.ambient * (np.float32(lt.ambient_colour[c]) * exposure)
        light += s.key * (np.float32(lt.colour[c]) * exposure)
        if lt.rim is not None:
            light += s.rim * (np.float32(lt.rim_colour[c]) * exposure)
        light *= surface
        light += highlight * np.float32(lt.colour[c])
        light.ravel()[neutral] = col[MAT["l_catchlight"], c]
        out[c] = light
    return camera(out, spec, rng)
