"""A material map being drawn: hard-edged (non-antialiased) polygons, lines and discs.

Wraps a PIL mode-L image whose pixel values are material ids (:mod:`model.synth.materials`).
Coordinates are pixels ``(x, y)``; widths given "at 512" are scaled to the canvas size and
never drop below one pixel, so thin things (necklaces, earrings) stay 1-3 px wide.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from model.synth.geometry import Pose
from model.synth.materials import MAT


class Canvas:
    """``size x size`` material ids, drawn with :class:`PIL.ImageDraw` (no antialiasing)."""

    def __init__(self, size: int, pose: Pose) -> None:
        self.size = size
        self.pose = pose
        self.image = Image.new("L", (size, size), 0)
        self._draw = ImageDraw.Draw(self.image)

    def width(self, px_at_512: float) -> int:
        """A line width given in pixels at 512, for this canvas (at least 1)."""
        return max(1, int(round(px_at_512 * self.size / 512)))

    def poly(self, pts: np.ndarray, material: str) -> None:
        """Fill the polygon of ``N x 2`` pixel points."""
        self._draw.polygon([tuple(p) for p in np.asarray(pts, dtype=np.float64)], fill=MAT[material])

    def line(self, pts: np.ndarray, material: str, px_at_512: float) -> None:
        """A polyline of ``N x 2`` pixel points, ``px_at_512`` wide."""
        self._draw.line([tuple(p) for p in np.asarray(pts, dtype=np.float64)], fill=MAT[material],
                        width=self.width(px_at_512), joint="curve")

    def disc(self, center: np.ndarray, radius: float, material: str) -> None:
        """A filled circle; ``radius`` in pixels (at least half a pixel)."""
        x, y = (float(v) for v in np.ravel(center)[:2])
        r = max(0.5, float(radius))
        self._draw.ellipse([x - r, y - r, x + r, y + r], fill=MAT[material])

    def array(self) -> np.ndarray:
        """The ``size x size`` uint8 material ids drawn so far (a copy)."""
        return np.array(self.image, dtype=np.uint8)

    def set_array(self, materials: np.ndarray) -> None:
        """Replace the drawing with ``materials`` (``size x size`` uint8), e.g. after compositing."""
        self.image = Image.fromarray(materials)
        self._draw = ImageDraw.Draw(self.image)

    def layer(self) -> "Canvas":
        """An empty canvas of the same size and pose, for drawing parts that are composited."""
        return Canvas(self.size, self.pose)
