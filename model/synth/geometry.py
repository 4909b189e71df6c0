"""Face-space geometry for the synthetic faces: a head pose and small shape helpers.

Shapes are described in *face units*: ``(x, y)`` with x to the image's right, y down, the
origin between the eyes and 1 unit = half the face width at eye level. :class:`Pose` maps
face units to pixels, with yaw (a turn about the vertical axis, which shifts points by their
depth and foreshortens the far cheek), pitch, roll (rotation in the image plane) and scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HEAD_DEPTH_CENTER_Y = 0.1
"""Vertical centre of the head ellipsoid, face units."""
HEAD_HALF_HEIGHT = 1.6
"""Half height of the head ellipsoid, face units (half width and depth are 1)."""


def head_depth(pts: np.ndarray) -> np.ndarray:
    """Depth ``z`` (towards the viewer, face units) of the head ellipsoid at ``N x 2`` points.

    Points outside the ellipsoid's outline get 0 (the silhouette).
    """
    x, y = pts[:, 0], (pts[:, 1] - HEAD_DEPTH_CENTER_Y) / HEAD_HALF_HEIGHT
    return np.sqrt(np.maximum(1.0 - x * x - y * y, 0.0))


@dataclass(frozen=True)
class Pose:
    """Where and how the head sits in the image.

    ``cx, cy``: the point between the eyes, as fractions of the image size. ``unit``: one
    face unit as a fraction of the image size. ``roll``, ``yaw``, ``pitch`` in radians
    (positive yaw turns the face towards the image's right).
    """

    cx: float
    cy: float
    unit: float
    roll: float
    yaw: float
    pitch: float

    def _to_px(self, x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
        c, s = np.cos(self.roll), np.sin(self.roll)
        px = (c * x - s * y) * self.unit * size + self.cx * size
        py = (s * x + c * y) * self.unit * size + self.cy * size
        return np.stack([px, py], axis=1)

    def surface(self, pts: np.ndarray, size: int, lift: float | np.ndarray = 0.0) -> np.ndarray:
        """Pixels of ``N x 2`` face-unit points on the head surface, raised by ``lift`` units.

        The point moves by its depth under yaw and pitch, so features on the far side bunch
        up towards the silhouette and the nose tip (``lift`` > 0) shifts most.
        """
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        z = head_depth(pts) + lift
        x = pts[:, 0] * np.cos(self.yaw) + z * np.sin(self.yaw)
        y = pts[:, 1] * np.cos(self.pitch) - z * np.sin(self.pitch)
        return self._to_px(x, y, size)

    def outline(self, pts: np.ndarray, size: int, protrude: float | np.ndarray = 0.0) -> np.ndarray:
        """Pixels of silhouette points: the head's outline keeps its width under yaw; only
        parts that stick out of the ellipsoid (``protrude`` units, e.g. the chin) shift."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        x = pts[:, 0] + protrude * np.sin(self.yaw)
        y = pts[:, 1] - protrude * np.sin(self.pitch)
        return self._to_px(x, y, size)

    def side(self, pts: np.ndarray, size: int, depth: float) -> np.ndarray:
        """Pixels of points at a fixed ``depth`` (units; ears about -0.1, back hair < 0)."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        x = pts[:, 0] * np.cos(self.yaw) + depth * np.sin(self.yaw)
        y = pts[:, 1] - depth * np.sin(self.pitch)
        return self._to_px(x, y, size)

    def body(self, pts: np.ndarray, size: int) -> np.ndarray:
        """Pixels of neck/torso points: the body turns with a quarter of the head's yaw."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return self._to_px(pts[:, 0] * np.cos(0.25 * self.yaw), pts[:, 1], size)

    def px(self, length: float, size: int) -> float:
        """A length in face units, in pixels."""
        return length * self.unit * size


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40, rot: float = 0.0,
            a0: float = 0.0, a1: float = 2 * np.pi) -> np.ndarray:
    """``n x 2`` points on an ellipse (or the arc from angle ``a0`` to ``a1``), rotated by ``rot``."""
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-9)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(rot), np.sin(rot)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def bezier(p0: tuple[float, float], p1: tuple[float, float], p2: tuple[float, float],
           n: int = 16) -> np.ndarray:
    """``n x 2`` points on the quadratic Bezier curve ``p0 → p2`` pulled towards ``p1``."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    a, b, c = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * b + t ** 2 * c


def band(center: np.ndarray, half_width: float | np.ndarray) -> np.ndarray:
    """Polygon (``2N x 2``) of a strip of ``half_width`` (scalar or per point) around a polyline."""
    d = np.gradient(center, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True) + 1e-9
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) * np.reshape(half_width, (-1, 1))
    return np.concatenate([center + normal, (center - normal)[::-1]])


def jitter(pts: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Points moved by uniform noise of ``±amount`` units (ragged hair edges, strand tips)."""
    return pts + rng.uniform(-amount, amount, size=pts.shape)
