"""Drawing the head: face outline, ears and earrings, eyes, brows, nose, lips and mouth.

All shapes are built in face units (:mod:`model.synth.geometry`) and projected with the
face's :class:`~model.synth.geometry.Pose`. ``sx`` is the image side: -1 is the image's
left, where the ``l_`` classes (l_eye, l_brow, l_ear) are drawn.
"""
from __future__ import annotations

import numpy as np

from model.synth.canvas import Canvas
from model.synth.geometry import band, bezier, ellipse, jitter
from model.synth.spec import Extras, Features


def side_prefix(sx: int) -> str:
    """``"l_"`` for the image's left (``sx = -1``), ``"r_"`` for its right."""
    return "l_" if sx < 0 else "r_"


def face_outline(f: Features) -> tuple[np.ndarray, np.ndarray]:
    """The skin silhouette (``N x 2`` face units, clockwise from the left temple) and how far
    each point sticks out of the head ellipsoid (the chin most)."""
    top = ellipse(0.0, 0.1, 1.0, 1.75, n=30, a0=np.pi, a1=2 * np.pi)
    right = bezier((1.0, 0.1), (f.jaw * 1.12, f.chin * 0.8), (f.chin_w, f.chin - 0.04), 14)
    chin = bezier((f.chin_w, f.chin - 0.04), (0.0, f.chin + 0.04), (-f.chin_w, f.chin - 0.04), 9)
    left = right[::-1] * [-1, 1]
    pts = np.concatenate([top, right[1:], chin[1:], left[1:]])
    protrude = 0.8 * np.clip((pts[:, 1] - 0.1) / (f.chin - 0.1), 0.0, 1.0) ** 1.2
    return pts, protrude


def draw_skin(c: Canvas, f: Features) -> None:
    pts, protrude = face_outline(f)
    c.poly(c.pose.outline(pts, c.size, protrude), "skin")


def ear_anchor(f: Features, sx: int) -> tuple[float, float]:
    """Centre of the ear on side ``sx`` (face units)."""
    return sx * (0.96 + 0.45 * f.ear_w), f.ear_top + f.ear_h / 2


def draw_ear(c: Canvas, f: Features, e: Extras, sx: int) -> None:
    """The ear on side ``sx`` and, when worn, its earring hanging from the lobe."""
    cx, cy = ear_anchor(f, sx)
    pts = ellipse(cx, cy, f.ear_w * 0.55, f.ear_h / 2, n=24, rot=sx * 0.12)
    below = np.clip((pts[:, 1] - cy) / (f.ear_h / 2), 0.0, 1.0)
    pts[:, 0] = cx + (pts[:, 0] - cx) * (1 - 0.35 * below)  # narrower lobe
    c.poly(c.pose.side(pts, c.size, depth=-0.1), side_prefix(sx) + "ear")
    bowl = ellipse(cx - sx * 0.02, cy - 0.02, f.ear_w * 0.3, f.ear_h * 0.3, n=16, rot=sx * 0.12)
    c.poly(c.pose.side(bowl, c.size, depth=-0.1), side_prefix(sx) + "ear_in")
    if e.earrings is None or (not e.earring_both and sx > 0):
        return
    lobe = c.pose.side(np.array([[cx, f.ear_top + f.ear_h - 0.03]]), c.size, depth=-0.1)[0]
    r = c.pose.px(e.earring_size, c.size)
    if e.earrings == "stud":
        c.disc(lobe, max(1.5, c.pose.px(0.03, c.size)), "earring")
    elif e.earrings == "hoop":
        ring = ellipse(lobe[0], lobe[1] + r, r * 0.8, r, n=24)
        c.line(np.concatenate([ring, ring[:1]]), "earring", 1.5)
    else:
        c.line(np.array([lobe, lobe + [0, 1.4 * r]]), "earring", 1.5)
        c.disc(lobe + [0, 1.4 * r], 0.3 * r, "earring")


def _lids(f: Features, sx: int, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid heights (face units) at ``s`` in [-1, 1] across the eye on side ``sx``."""
    inner = -sx * s  # +1 at the corner next to the nose
    tilt = -f.eye_tilt * f.eye_w * (-inner)  # outer corner higher when tilt > 0
    upper = -f.eye_h * (1 - s * s) * (1 + 0.2 * inner) + tilt
    lower = 0.65 * f.eye_h * (1 - s * s) * (1 - 0.15 * inner) + tilt
    return upper, lower


def _inside_eye(f: Features, sx: int, pts: np.ndarray) -> np.ndarray:
    """``pts`` (face units) clamped into the eye opening on side ``sx``."""
    cx = sx * f.eye_dx
    s = np.clip((pts[:, 0] - cx) / f.eye_w, -0.97, 0.97)
    upper, lower = _lids(f, sx, s)
    return np.stack([cx + s * f.eye_w, np.clip(pts[:, 1], upper, lower)], axis=1)


def draw_eye(c: Canvas, f: Features, sx: int, light: tuple[float, float, float]) -> None:
    """Sclera, iris, pupil, catchlight and lash line of the eye on side ``sx``."""
    p, cx = side_prefix(sx), sx * f.eye_dx
    s = np.linspace(-1.0, 1.0, 21)
    upper, lower = _lids(f, sx, s)
    x = cx + s * f.eye_w
    c.poly(c.pose.surface(np.concatenate([np.stack([x, upper], 1), np.stack([x, lower], 1)[::-1]]),
                          c.size), p + "sclera")
    r = f.iris * 0.7 * f.eye_w
    ix, iy = cx + f.gaze * f.eye_w * 0.35, 0.1 * f.eye_h
    for radius, name in ((r, "iris"), (0.42 * r, "pupil")):
        c.poly(c.pose.surface(_inside_eye(f, sx, ellipse(ix, iy, radius, radius, n=20)), c.size),
               p + name)
    glint = np.array([[ix + 0.45 * r * light[0], iy + 0.45 * r * light[1]]])
    if np.allclose(_inside_eye(f, sx, glint), glint):
        c.disc(c.pose.surface(glint, c.size)[0], c.pose.px(0.22 * r, c.size), p + "catchlight")
    c.line(c.pose.surface(np.stack([x, upper], 1), c.size), p + "lash", c.pose.px(0.022, 512))


def draw_brow(c: Canvas, f: Features, sx: int, rng: np.random.Generator) -> None:
    inner = (sx * 0.12, f.brow_y + 0.03)
    outer = (sx * (0.12 + f.brow_len * 1.35), f.brow_y + 0.05)
    ctrl = (sx * (0.12 + f.brow_len * 0.8), f.brow_y - 2 * f.brow_arch - 0.02)
    centre = bezier(inner, ctrl, outer, 14)
    half = f.brow_thick / 2 * np.interp(np.linspace(0, 1, 14), [0, 0.35, 1], [0.9, 1.0, 0.35])
    pts = jitter(band(centre, half), rng, 0.006)
    c.poly(c.pose.surface(pts, c.size, lift=0.03), side_prefix(sx) + "brow")


def draw_nose(c: Canvas, f: Features) -> None:
    tip, nw, bw = f.nose_tip, f.nose_w, f.bridge_w
    right = np.array([(bw / 2, 0.0), (bw * 0.55, tip * 0.45), (nw * 0.55, tip - 0.12),
                      (nw, tip - 0.02), (nw * 0.85, tip + 0.06), (nw * 0.35, tip + 0.09)])
    pts = np.concatenate([right, [(0.0, tip + 0.1)], right[::-1] * [-1, 1]])
    lift = (0.05 + 0.3 * np.clip(pts[:, 1] / tip, 0, 1) ** 2) * (1 - 0.5 * np.abs(pts[:, 0]) / nw)
    c.poly(c.pose.surface(pts, c.size, lift=lift), "nose")
    for sx in (-1, 1):
        nostril = ellipse(sx * nw * 0.5, tip + 0.035, nw * 0.28, 0.028, n=14, rot=sx * 0.3)
        c.poly(c.pose.surface(nostril, c.size, lift=0.2), "nostril")
        wing = bezier((sx * nw * 0.5, tip - 0.12), (sx * nw * 1.05, tip - 0.02),
                      (sx * nw * 0.7, tip + 0.07), 8)
        c.line(c.pose.surface(wing, c.size, lift=0.2), "nose_crease", c.pose.px(0.015, 512))


def draw_mouth(c: Canvas, f: Features) -> None:
    """Lips, and when the mouth is open the inner mouth with teeth and tongue."""
    x = f.mouth_w * np.linspace(-1.0, 1.0, 25)
    s2 = (x / f.mouth_w) ** 2
    line = f.mouth_y - f.smile * s2
    opening = f.mouth_open * (1 - s2) ** 0.8
    up, down = line - 0.3 * opening, line + 0.7 * opening  # the jaw drops more than the lip lifts
    top = up - f.ulip_h * (1 - s2) ** 0.6 * (1 - 0.3 * np.exp(-(x / 0.05) ** 2))
    bottom = down + f.llip_h * (1 - s2) ** 0.7

    def shape(a: np.ndarray, b: np.ndarray, material: str, xs: np.ndarray = x) -> None:
        pts = np.concatenate([np.stack([xs, a], 1), np.stack([xs, b], 1)[::-1]])
        c.poly(c.pose.surface(pts, c.size, lift=0.08), material)

    shape(top, up, "u_lip")
    shape(down, bottom, "l_lip")
    if f.mouth_open <= 0:
        return
    shape(up, down, "mouth")
    inner = np.abs(x) < 0.75 * f.mouth_w
    if f.teeth:
        teeth_h = np.minimum(0.045, 0.6 * opening[inner])
        shape(up[inner], up[inner] + teeth_h, "teeth", x[inner])
    if f.tongue:
        shape(down[inner] - 0.35 * opening[inner], down[inner], "tongue", x[inner])


def draw_beard(c: Canvas, f: Features) -> None:
    """A full beard, a goatee or a moustache: hair-coloured, but labelled skin (as in
    CelebAMask-HQ); the lips are drawn over it."""
    if f.beard is None:
        return
    x = f.mouth_w * 1.1
    lip_top = f.mouth_y - f.ulip_h - 0.1
    moustache = bezier((-x, f.mouth_y + 0.02), (0.0, 2 * lip_top - f.mouth_y), (x, f.mouth_y + 0.02), 12)
    if f.beard == "moustache":
        c.poly(c.pose.surface(band(moustache, 0.045), c.size, lift=0.09), "beard")
        return
    outline, protrude = face_outline(f)
    low = outline[:, 1] > (0.35 if f.beard == "full" else f.mouth_y + 0.1)
    if f.beard == "goatee":
        low &= np.abs(outline[:, 0]) < f.chin_w + 0.15
    jaw = c.pose.outline(outline[low] * 1.02, c.size, protrude[low])
    inner = moustache[::-1] if f.beard == "full" else bezier(
        (f.chin_w + 0.1, f.mouth_y + 0.05), (0.0, f.mouth_y + 0.35), (-f.chin_w - 0.1, f.mouth_y + 0.05), 8)
    c.poly(np.concatenate([jaw, c.pose.surface(inner, c.size, lift=0.09)]), "beard")


def draw_features(c: Canvas, f: Features, light: tuple[float, float, float],
                  rng: np.random.Generator) -> None:
    """Beard, nose, eyes, brows and mouth (on a layer that the caller clips to the skin)."""
    draw_beard(c, f)
    draw_nose(c, f)
    for sx in (-1, 1):
        draw_eye(c, f, sx, light)
        draw_brow(c, f, sx, rng)
    draw_mouth(c, f)
