"""Drawing hair: the mass behind the head, the cap over the skull and forehead, a fringe,
locks that cover the ears, and long locks that fall in front of the shoulders.

Edges are ragged (jittered points, zig-zag strand tips) so hair is told by its shape and
texture, not by a clean outline. Face units as in :mod:`model.synth.geometry`.
"""
from __future__ import annotations

import numpy as np

from model.synth.canvas import Canvas
from model.synth.geometry import bezier, ellipse, jitter
from model.synth.spec import Features, Hair


def _tips(x0: float, x1: float, y: float, n: int, depth: float, rng: np.random.Generator) -> np.ndarray:
    """A zig-zag of strand tips from ``x0`` to ``x1`` around height ``y``, ``depth`` deep."""
    xs = np.linspace(x0, x1, n)
    ys = y + np.where(np.arange(n) % 2 == 1, depth, 0.0) + rng.uniform(-0.3, 0.3, n) * depth
    return np.stack([xs, ys], axis=1)


def draw_hair_back(c: Canvas, h: Hair, rng: np.random.Generator) -> None:
    """Hair behind the head and neck, down to ``h.length``."""
    if h.kind == "bald":
        return
    grow = 1.15 if h.curly else 1.0
    rx, ry = 1.08 * h.volume * grow, 1.72 * h.volume * grow ** 0.5
    dome = ellipse(0.0, 0.05, rx, ry, n=60 if h.curly else 30, a0=np.pi, a1=2 * np.pi)
    if h.curly:  # a bumpy outline of curls
        dome = dome * (1 + 0.035 * np.sin(np.linspace(0, 40, len(dome)) + rng.uniform(0, 6)))[:, None]
    flare = 0.1 + 0.12 * h.length
    bottom = max(h.length, 0.3)
    right = np.array([(rx, 0.05), (rx + flare * 0.6, (bottom + 0.05) / 2), (rx + flare, bottom)])
    tips = _tips(rx + flare, -rx - flare, bottom, 15, 0.12, rng)
    left = right[::-1] * [-1, 1]
    pts = jitter(np.concatenate([dome, right, tips, left]), rng, 0.05 if h.curly else 0.025)
    c.poly(c.pose.side(pts, c.size, depth=-0.35), "hair_back")


def draw_hair_cap(c: Canvas, h: Hair, f: Features, rng: np.random.Generator) -> None:
    """Hair over the skull down to the hairline, with sideburns."""
    if h.kind == "bald":
        return
    a = np.arcsin(min(0.9, 0.45 / (1.75 * h.volume)))
    arc = ellipse(0.0, 0.1, 1.0 * h.volume, 1.75 * h.volume, n=28, a0=np.pi + a, a1=2 * np.pi - a)
    arc = np.concatenate([arc, [(1.0 * h.volume, -0.25)]])
    burn = f.ear_top + 0.12
    right = np.array([(1.0, burn), (0.88, burn), (0.9, -0.35)])
    hairline = np.concatenate([bezier((0.9, -0.35), (0.6, h.hairline + 0.1), (0.0, h.hairline), 10),
                               bezier((0.0, h.hairline), (-0.6, h.hairline + 0.1), (-0.9, -0.35), 10)[1:]])
    left = right[::-1] * [-1, 1]
    inner = jitter(np.concatenate([right, hairline, left, [(-1.0 * h.volume, -0.25)]]), rng, 0.015)
    c.poly(np.concatenate([c.pose.outline(arc, c.size), c.pose.surface(inner, c.size, lift=0.02)]),
           "hair")


def draw_fringe(c: Canvas, h: Hair, rng: np.random.Generator) -> None:
    """Bangs over the forehead, their lower edge at ``h.fringe`` (may hide the brows)."""
    if h.fringe is None:
        return
    slant = rng.uniform(-0.15, 0.15)
    tips = _tips(0.93, -0.93, h.fringe, 17, 0.06, rng)
    tips[:, 1] += 0.12 * (tips[:, 0] / 0.93) ** 2 + slant * tips[:, 0]
    top = bezier((-0.93, -0.95), (0.0, h.hairline - 0.35), (0.93, -0.95), 9)
    pts = jitter(np.concatenate([top, tips]), rng, 0.012)
    c.poly(c.pose.surface(pts, c.size, lift=0.06), "hair")


def draw_side_locks(c: Canvas, h: Hair, f: Features, rng: np.random.Generator) -> None:
    """Locks down the sides of the face that hide the ears (``cover_l``/``cover_r``) and long
    locks in front of the shoulders (``front_l``/``front_r``)."""
    end = max(f.ear_top + f.ear_h + 0.3, min(h.length, 1.8))
    for sx, cover, front in ((-1, h.cover_l, h.front_l), (1, h.cover_r, h.front_r)):
        if cover:
            outer = 1.15 * h.volume + 0.05
            pts = np.array([(0.8, -0.55), (1.1 * h.volume, -0.5), (outer, f.ear_top + f.ear_h + 0.2)])
            tips = _tips(outer, 0.9, end, 7, 0.1, rng)
            inner = np.array([(0.86, f.ear_top + f.ear_h * 0.5)])
            lock = jitter(np.concatenate([pts, tips, inner]), rng, 0.02) * [sx, 1]
            c.poly(c.pose.side(lock, c.size, depth=0.1), "hair")
        if front:
            down = bezier((0.85, 0.0), (0.95, 1.0), (1.1, h.length), 8)
            out = bezier((1.2, -0.2), (1.45, 1.2), (1.6, h.length), 8)[::-1]
            tips = _tips(1.1, 1.6, h.length, 5, 0.12, rng)
            lock = jitter(np.concatenate([down, tips, out[1:]]), rng, 0.02) * [sx, 1]
            c.poly(c.pose.side(lock, c.size, depth=0.1), "hair")
