"""Drawing what is not the head itself: neck and clothes, necklace, hat, glasses, face mask
and a hand with its arm. Face units as in :mod:`model.synth.geometry`."""
from __future__ import annotations

import numpy as np

from model.synth.canvas import Canvas
from model.synth.geometry import band, bezier, ellipse
from model.synth.head import ear_anchor
from model.synth.spec import Body, Extras, Features


def draw_neck_and_cloth(c: Canvas, b: Body) -> None:
    nw, sy, sw = b.neck_w, b.shoulder_y, b.shoulder_w
    neck = np.array([(-nw, 0.6), (nw, 0.6), (nw * 1.2, sy + 0.3), (nw * 1.5, sy + 2.0),
                     (-nw * 1.5, sy + 2.0), (-nw * 1.2, sy + 0.3)])
    c.poly(c.pose.body(neck, c.size), "neck")
    cx = nw * 1.25
    dip = {"crew": 0.35, "collar": 0.35, "scoop": 1.0, "v": 0.0}[b.neckline]
    if b.neckline == "v":
        neckline = np.array([(-cx, sy - 0.1), (0.0, sy + 0.8), (cx, sy - 0.1)])
    else:
        neckline = bezier((-cx, sy - 0.1), (0.0, sy + dip), (cx, sy - 0.1), 15)
    shoulder = bezier((cx, sy - 0.1), (sw * 0.75, sy - 0.05), (sw, sy + 0.9), 10)
    right = np.concatenate([shoulder, [(sw + 0.3, sy + 1.2), (sw + 3.0, 8.0)]])
    left = right[::-1] * [-1, 1]
    c.poly(c.pose.body(np.concatenate([left, neckline, right]), c.size), "cloth")
    if b.neckline in ("crew", "scoop"):
        c.poly(c.pose.body(band(neckline, 0.035), c.size), "cloth_trim")
    elif b.neckline == "collar":
        for sx in (-1, 1):
            flap = np.array([(cx * 1.05, sy - 0.15), (0.06, sy + 0.5), (cx * 0.35, sy + 0.05)]) * [sx, 1]
            c.poly(c.pose.body(flap, c.size), "cloth_trim")


def draw_necklace(c: Canvas, b: Body, e: Extras) -> None:
    """A chain ``e.necklace_px`` wide (at 512) around the neck, optionally with a pendant."""
    if not e.necklace:
        return
    x0 = b.neck_w * 0.97
    chain = bezier((-x0, 1.5), (0.0, 2 * e.necklace_drop - 1.5), (x0, 1.5), 40)
    c.line(c.pose.body(chain, c.size), "necklace", e.necklace_px)
    if e.pendant:
        c.disc(c.pose.body(np.array([[0.0, e.necklace_drop + 0.04]]), c.size)[0],
               c.pose.px(0.04, c.size), "pendant")


def draw_hat(c: Canvas, e: Extras) -> None:
    """A cap (dome and brim), a beanie (dome and folded band) or a brimmed hat."""
    if e.hat is None:
        return
    y = e.hat_y

    def put(pts: np.ndarray, material: str) -> None:
        c.poly(c.pose.side(pts, c.size, depth=0.25), material)

    if e.hat in ("cap", "beanie"):
        dome = ellipse(0.0, y, 1.12, y + 1.95, n=30, a0=np.pi, a1=2 * np.pi)
        put(np.concatenate([dome, bezier((1.12, y), (0.0, y + 0.08), (-1.12, y), 9)]), "hat")
        if e.hat == "cap":
            put(ellipse(0.0, y + 0.02, 0.9, e.brim * 0.6, n=30), "hat_band")
        else:
            put(np.concatenate([bezier((-1.14, y - 0.22), (0.0, y - 0.16), (1.14, y - 0.22), 9),
                                bezier((1.14, y + 0.02), (0.0, y + 0.1), (-1.14, y + 0.02), 9)]),
                "hat_band")
        return
    brim = ellipse(0.0, y, 1.45 + 1.5 * e.brim, 0.16 + 0.35 * e.brim, n=40)
    put(brim, "hat")
    crown = np.concatenate([[(-0.95, y - 0.05)], ellipse(0.0, -1.75, 0.88, 0.35, n=16, a0=np.pi,
                                                          a1=2 * np.pi), [(0.95, y - 0.05)]])
    put(crown, "hat")
    put(np.array([(-0.95, y - 0.22), (0.95, y - 0.22), (0.95, y - 0.05), (-0.95, y - 0.05)]), "hat_band")
    put(brim[brim[:, 1] >= y], "hat")  # the brim's front edge passes in front of the crown


def glasses_lenses(f: Features, e: Extras) -> list[np.ndarray]:
    """The two lens outlines (face units), image-left lens first."""
    w = min(e.lens_w, f.eye_dx - 0.06)
    out = []
    for sx in (-1, 1):
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        k = 1.0 if e.round_lens else 0.4  # an ellipse, or a superellipse (rounded rectangle)
        x = w * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** k
        y = e.lens_h * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** k
        out.append(np.stack([sx * f.eye_dx + x, 0.02 + y], axis=1))
    return out


def _frame_px(c: Canvas, e: Extras) -> float:
    return e.frame_px * c.pose.unit / 0.19


def draw_glasses_arms(c: Canvas, f: Features, e: Extras) -> None:
    """The temples, from the lenses back to the ears (drawn before hair so hair hides them)."""
    if e.glasses is None:
        return
    for sx, lens in zip((-1, 1), glasses_lenses(f, e)):
        start = c.pose.surface(np.array([[lens[:, 0].max() if sx > 0 else lens[:, 0].min(), -0.03]]),
                               c.size, lift=0.15)
        end = c.pose.side(np.array([[sx * 1.0, -0.02]]), c.size, depth=0.0)
        c.line(np.concatenate([start, end]), "frame", 0.8 * _frame_px(c, e))


def draw_glasses(c: Canvas, f: Features, e: Extras) -> None:
    """Lenses (clear or dark) in a frame ``e.frame_px`` wide, and the bridge."""
    if e.glasses is None:
        return
    lenses = glasses_lenses(f, e)
    for lens in lenses:
        px = c.pose.surface(lens, c.size, lift=0.15)
        c.poly(px, "lens")
        c.line(np.concatenate([px, px[:1]]), "frame", _frame_px(c, e))
    a, b = lenses[0][:, 0].max(), lenses[1][:, 0].min()
    bridge = bezier((a, -0.02), (0.0, -0.09), (b, -0.02), 9)
    c.line(c.pose.surface(bridge, c.size, lift=0.2), "frame", _frame_px(c, e))


def draw_mask(c: Canvas, f: Features, e: Extras) -> None:
    """A face mask from ``e.mask_top`` (across the nose) to under the chin, with pleats and
    straps to the ears."""
    if not e.mask:
        return
    top = e.mask_top
    upper = bezier((-0.98, top + 0.22), (0.0, top - 0.12), (0.98, top + 0.22), 15)
    c_lift = 0.12 + 0.25 * np.exp(-(upper[:, 0] / 0.25) ** 2)
    right = bezier((1.0, top + 0.3), (f.jaw * 1.15, f.chin * 0.85), (f.chin_w * 0.8, f.chin + 0.1), 10)
    low = bezier((f.chin_w * 0.8, f.chin + 0.1), (0.0, f.chin + 0.2), (-f.chin_w * 0.8, f.chin + 0.1), 7)
    rest = np.concatenate([right, low[1:], (right[::-1] * [-1, 1])[1:]])
    protrude = 0.8 * np.clip((rest[:, 1] - 0.1) / (f.chin - 0.1), 0.0, 1.0) ** 1.2
    c.poly(np.concatenate([c.pose.surface(upper, c.size, lift=c_lift),
                           c.pose.outline(rest, c.size, protrude)]), "mask")
    for i in range(3):
        y = top + 0.3 + i * (f.chin - top - 0.3) / 3.2
        fold = bezier((-0.8, y + 0.05), (0.0, y - 0.05), (0.8, y + 0.05), 12)
        c.line(c.pose.surface(fold, c.size, lift=0.15), "mask_fold", 1.5)
    for sx in (-1, 1):
        ear = c.pose.side(np.array([ear_anchor(f, sx)]), c.size, depth=-0.1)[0]
        for corner in ((sx * 0.97, top + 0.3), (sx * 0.85, f.chin * 0.8)):
            start = c.pose.outline(np.array([corner]), c.size)[0]
            c.line(np.array([start, ear]), "strap", 2.0)


def draw_hand(c: Canvas, e: Extras, rng: np.random.Generator) -> None:
    """A hand over ``e.hand_at`` with fingers up (turned by ``e.hand_angle``), its arm leaving
    the picture downwards, in a sleeve or bare."""
    if not e.hand:
        return
    target = c.pose.surface(np.array([e.hand_at]), c.size)[0]
    scale = c.pose.px(e.hand_scale, c.size)
    th = e.hand_angle + c.pose.roll
    right, down = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])

    def px(pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        return target + scale * (pts[:, :1] * right + pts[:, 1:] * down)

    arm = np.array([(0.0, 0.5), (0.0, 8.0)])
    c.poly(px(band(np.linspace(arm[0], arm[1], 8), np.linspace(0.3, 0.45, 8))), "hand")
    if e.sleeve:
        c.poly(px(band(np.array([(0.0, 1.0), (0.0, 8.0)]), 0.5)), "sleeve")
    c.poly(px(ellipse(0.0, 0.35, 0.36, 0.4, n=28)), "hand")
    side = 1.0 if e.hand_right else -1.0
    thumb_dir = np.array([side * 0.8, -0.6])
    thumb = np.array([(side * 0.3, 0.45), (side * 0.3, 0.45) + 0.45 * thumb_dir])
    c.poly(px(band(np.linspace(thumb[0], thumb[1], 6), 0.085)), "hand")
    c.disc(px(thumb[1])[0], 0.085 * scale, "hand")
    nails = rng.uniform() < 0.5
    spread = rng.uniform(0.0, 0.12)
    for i, (x, length) in enumerate(zip((-0.24, -0.08, 0.08, 0.24), (0.5, 0.6, 0.56, 0.44))):
        ang = (i - 1.5) * spread
        tip = np.array([x + length * np.sin(ang), 0.05 - length * np.cos(ang)])
        c.poly(px(band(np.linspace([x, 0.1], tip, 6), 0.075)), "hand")
        c.disc(px(tip)[0], 0.075 * scale, "hand")
        if nails:
            c.disc(px(tip + [0.0, 0.04])[0], 0.045 * scale, "nail")
        if i > 0:
            gap = np.array([(x - 0.08, 0.05), (x - 0.08 + 0.3 * np.sin(ang), -0.3)])
            c.line(px(gap), "finger_gap", 1.0)
