"""Lighting of a synthetic face, computed at low resolution from the material map alone.

Each material has an elevation above the background wall (:data:`ELEVATION`); blurred, that
height field gives surface normals (a dome for the head, bumps for nose and lips, sockets for
the eyes). From it: Lambert shading towards the key light, an optional rim light, ambient
occlusion in creases, soft cast shadows by marching towards the light over the height field
(the chin on the neck, a fringe or brim on the forehead, a hand on the face), and two
Blinn-Phong specular lobes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.fields import downsample, gauss_blur, resize
from model.synth.materials import ELEVATION, MAT
from model.synth.spec import FaceSpec

ELEVATION_UNIT = 0.1
"""One elevation unit, in face units (used to turn heights into slopes)."""
SHADOW_STEPS = 10


@dataclass(frozen=True)
class Shading:
    """Full-resolution ``H x W`` float32 lighting fields: ``ambient`` (with occlusion),
    ``key`` (Lambert times shadow), ``rim``, and the broad and narrow specular lobes
    ``gloss`` and ``shine``. Colours are applied by the renderer."""

    ambient: np.ndarray
    key: np.ndarray
    rim: np.ndarray
    gloss: np.ndarray
    shine: np.ndarray


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` sampled at ``(y + dy, x + dx)``, edges repeated."""
    m = max(abs(dy), abs(dx))
    p = np.pad(a, m, mode="edge")
    h, w = a.shape
    return p[m + dy:m + dy + h, m + dx:m + dx + w]


def cast_shadow(elev: np.ndarray, direction: tuple[float, float, float], px_per_unit: float) -> np.ndarray:
    """``H x W`` 0/1: 1 where something higher stands between the point and the light."""
    lx, ly, lz = direction
    flat = float(np.hypot(lx, ly))
    out = np.zeros_like(elev)
    if flat < 0.05:
        return out
    step = max(1.0, 0.06 * px_per_unit)
    rise = (lz / flat) / (ELEVATION_UNIT * px_per_unit)  # elevation units per pixel
    for i in range(1, SHADOW_STEPS + 1):
        d = i * step
        ahead = _shifted(elev, int(round(d * ly / flat)), int(round(d * lx / flat)))
        out = np.maximum(out, (ahead > elev + d * rise + 0.15).astype(np.float32))
    return out


def shade(materials: np.ndarray, spec: FaceSpec) -> Shading:
    """Lighting for an ``H x W`` material map (``H == W``)."""
    size = materials.shape[0]
    factor = 4 if size >= 256 else 2
    low = downsample(materials, factor)
    unit = spec.pose.unit * size / factor  # low-res pixels per face unit
    elev = ELEVATION[low]
    height = 0.7 * gauss_blur(elev, 0.3 * unit) + 0.3 * gauss_blur(elev, 0.07 * unit)
    gy, gx = np.gradient(height)
    wall = low == MAT["background"]
    k = 0.35 * unit * ELEVATION_UNIT * 10
    nx, ny = np.where(wall, 0.0, -gx * k), np.where(wall, 0.0, -gy * k)
    norm = np.sqrt(nx * nx + ny * ny + 1.0)
    nx, ny, nz = nx / norm, ny / norm, 1.0 / norm

    lt = spec.light
    lx, ly, lz = lt.direction
    shadow = gauss_blur(cast_shadow(elev, lt.direction, unit), lt.softness_px * size / 512 / factor)
    lit = np.clip(nx * lx + ny * ly + nz * lz, 0.0, 1.0) * (1.0 - lt.shadow * shadow)
    occlusion = 1.0 - 0.35 * np.clip(gauss_blur(elev, 0.12 * unit) - elev, 0.0, 2.0)
    hx, hy, hz = lx, ly, lz + 1.0
    hn = np.sqrt(hx * hx + hy * hy + hz * hz)
    ndh = np.clip((nx * hx + ny * hy + nz * hz) / hn, 0.0, 1.0) * (1.0 - shadow)
    rim = np.zeros((1, 1), np.float32)
    if lt.rim is not None:
        rx, ry, rz = lt.rim
        rim = np.clip(nx * rx + ny * ry + nz * rz, 0.0, 1.0) ** 2 * np.where(wall, 0.0, 0.8)

    return Shading(ambient=resize(lt.ambient * occlusion, size), key=resize(lit * (1.0 - lt.ambient), size),
                   rim=resize(rim, size) if lt.rim is not None else np.zeros((1, 1), np.float32),
                   gloss=resize(ndh ** 10, size), shine=resize(ndh ** 48, size))
