"""The random description of one synthetic face (:class:`FaceSpec`) and how it is drawn per style.

Everything random about a face's content (shape, pose, accessories, colours, light, camera)
is decided here, from one generator, before anything is drawn; so a face is the same at every
image size. Lengths are in face units (see :mod:`model.synth.geometry`) unless they end in
``_px``, which are pixels at 512 x 512.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synth.colors import material_colours
from model.synth.geometry import Pose

STYLES: tuple[str, ...] = ("studio", "wild")
"""``studio``: frontal soft light, clean backgrounds, few occluders. ``wild``: the shifted
domain — hands and face masks over most faces, harsh coloured side light, more pose, blur
and noise, cluttered backgrounds."""

# Per style: probabilities and ranges that differ between the domains.
_STYLE: dict[str, dict[str, float]] = {
    "studio": dict(yaw=0.15, yaw_max=0.35, roll=0.06, roll_max=0.18, pitch=0.08, unit_lo=0.2,
                   unit_hi=0.24, shift=0.03, hand=0.07, mask=0.05, side_light=0.1, ambient_lo=0.38,
                   ambient_hi=0.55, tint=0.08, rim=0.1, soft_lo=8.0, soft_hi=16.0, blur_lo=0.4,
                   blur_hi=1.0, noise_lo=0.5, noise_hi=3.0, clutter=0.15),
    "wild": dict(yaw=0.3, yaw_max=0.6, roll=0.15, roll_max=0.4, pitch=0.15, unit_lo=0.17,
                 unit_hi=0.27, shift=0.07, hand=0.55, mask=0.45, side_light=0.85, ambient_lo=0.14,
                 ambient_hi=0.3, tint=0.45, rim=0.5, soft_lo=4.0, soft_hi=8.0, blur_lo=0.8,
                 blur_hi=3.0, noise_lo=3.0, noise_hi=11.0, clutter=0.5),
}

HAND_TARGETS: tuple[tuple[float, float], ...] = (
    (0.0, 0.9), (0.0, 1.35), (-0.6, 0.6), (0.6, 0.6), (-0.42, 0.0), (0.42, 0.0), (0.25, -0.8),
    (-1.0, 0.3), (1.0, 0.3),
)
"""Face-unit points a hand may cover: mouth, chin, cheeks, eyes, forehead, jaw sides."""


@dataclass(frozen=True)
class Features:
    """Inner face: eyes, brows, nose, mouth, ears and the face outline (face units)."""

    jaw: float
    chin: float
    chin_w: float
    eye_dx: float
    eye_w: float
    eye_h: float
    eye_tilt: float
    iris: float
    gaze: float
    brow_y: float
    brow_thick: float
    brow_arch: float
    brow_len: float
    nose_tip: float
    nose_w: float
    bridge_w: float
    mouth_y: float
    mouth_w: float
    ulip_h: float
    llip_h: float
    smile: float
    mouth_open: float
    teeth: bool
    tongue: bool
    ear_top: float
    ear_h: float
    ear_w: float
    beard: str | None


@dataclass(frozen=True)
class Hair:
    """``kind`` in bald/short/medium/long; ``fringe`` is the fringe's lower edge (or None)."""

    kind: str
    hairline: float
    volume: float
    fringe: float | None
    cover_l: bool
    cover_r: bool
    front_l: bool
    front_r: bool
    length: float
    curly: bool


@dataclass(frozen=True)
class Extras:
    """Accessories and occluders; ``None``/False when absent."""

    hat: str | None
    hat_y: float
    brim: float
    glasses: str | None
    round_lens: bool
    frame_px: float
    lens_w: float
    lens_h: float
    earrings: str | None
    earring_size: float
    earring_both: bool
    necklace: bool
    necklace_px: float
    necklace_drop: float
    pendant: bool
    hand: bool
    hand_at: tuple[float, float]
    hand_angle: float
    hand_scale: float
    hand_right: bool
    sleeve: bool
    mask: bool
    mask_top: float


@dataclass(frozen=True)
class Body:
    """Neck and clothes (face units); ``neckline`` in crew/v/scoop/collar."""

    neck_w: float
    shoulder_y: float
    shoulder_w: float
    neckline: str
    pattern: str
    pattern_period: float
    pattern_angle: float


@dataclass(frozen=True)
class Light:
    """Unit ``direction`` (x right, y down, z to the viewer) towards the key light; colours RGB."""

    direction: tuple[float, float, float]
    colour: tuple[float, float, float]
    ambient: float
    ambient_colour: tuple[float, float, float]
    softness_px: float
    shadow: float
    specular: float
    rim: tuple[float, float, float] | None
    rim_colour: tuple[float, float, float]
    exposure: float
    vignette: float


@dataclass(frozen=True, eq=False)
class FaceSpec:
    """Everything random about one face. ``colours`` is ``NUM_MATERIALS x 3`` float32 albedo."""

    style: str
    pose: Pose
    features: Features
    hair: Hair
    extras: Extras
    body: Body
    light: Light
    background: str
    blur_px: float
    noise: float
    chroma_noise: float
    colours: np.ndarray
    shape_seed: int


def _clipped_normal(rng: np.random.Generator, sd: float, limit: float) -> float:
    return float(np.clip(rng.normal(0.0, sd), -limit, limit))


def _unit(v: np.ndarray) -> tuple[float, float, float]:
    v = v / np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


def _tint(rng: np.random.Generator, amount: float) -> tuple[float, float, float]:
    """A light colour: white moved ``amount`` (at most) towards a random hue, mean brightness 1."""
    c = 1.0 + rng.uniform(-amount, amount, 3)
    c = c / c.mean()
    return (float(c[0]), float(c[1]), float(c[2]))


def sample_features(rng: np.random.Generator) -> Features:
    u = rng.uniform
    open_mouth = u() < 0.35
    return Features(
        jaw=u(0.72, 0.92), chin=u(1.38, 1.55), chin_w=u(0.22, 0.42),
        eye_dx=u(0.38, 0.46), eye_w=u(0.17, 0.23), eye_h=u(0.045, 0.095), eye_tilt=u(-0.12, 0.12),
        iris=u(0.55, 0.75), gaze=u(-0.3, 0.3),
        brow_y=u(-0.38, -0.27), brow_thick=u(0.045, 0.11), brow_arch=u(0.0, 0.08),
        brow_len=u(0.38, 0.52),
        nose_tip=u(0.45, 0.6), nose_w=u(0.15, 0.25), bridge_w=u(0.05, 0.09),
        mouth_y=u(0.82, 0.93), mouth_w=u(0.27, 0.42), ulip_h=u(0.04, 0.085), llip_h=u(0.06, 0.12),
        smile=u(-0.03, 0.08), mouth_open=u(0.05, 0.22) if open_mouth else 0.0,
        teeth=bool(u() < 0.7), tongue=bool(u() < 0.4),
        ear_top=u(-0.15, 0.0), ear_h=u(0.5, 0.65), ear_w=u(0.16, 0.24),
        beard=str(rng.choice(["full", "goatee", "moustache"])) if u() < 0.18 else None)


def sample_hair(rng: np.random.Generator) -> Hair:
    u = rng.uniform
    kind = str(rng.choice(["bald", "short", "medium", "long"], p=[0.05, 0.35, 0.3, 0.3]))
    covers = kind in ("medium", "long")
    return Hair(
        kind=kind, hairline=u(-1.0, -0.75), volume=u(1.04, 1.3),
        fringe=u(-0.55, -0.25) if kind != "bald" and u() < 0.35 else None,
        cover_l=covers and u() < 0.45, cover_r=covers and u() < 0.45,
        front_l=kind == "long" and u() < 0.4, front_r=kind == "long" and u() < 0.4,
        length={"bald": 0.2, "short": 0.45, "medium": 1.5, "long": 3.2}[kind] * u(0.85, 1.15),
        curly=bool(u() < 0.2))


def sample_extras(rng: np.random.Generator, p: dict[str, float]) -> Extras:
    u = rng.uniform
    glasses = str(rng.choice(["clear", "sun"], p=[0.7, 0.3])) if u() < 0.25 else None
    return Extras(
        hat=str(rng.choice(["cap", "beanie", "brimmed"])) if u() < 0.2 else None,
        hat_y=u(-0.95, -0.6), brim=u(0.12, 0.3),
        glasses=glasses, round_lens=bool(u() < 0.4), frame_px=u(1.5, 5.0),
        lens_w=u(0.24, 0.32), lens_h=u(0.15, 0.22),
        earrings=str(rng.choice(["stud", "hoop", "drop"])) if u() < 0.35 else None,
        earring_size=u(0.04, 0.14), earring_both=bool(u() < 0.75),
        necklace=bool(u() < 0.35), necklace_px=float(rng.choice([1.0, 1.5, 2.0, 3.0])),
        necklace_drop=u(1.65, 2.2), pendant=bool(u() < 0.4),
        hand=bool(u() < p["hand"]), hand_at=HAND_TARGETS[rng.integers(len(HAND_TARGETS))],
        hand_angle=u(-0.9, 0.9), hand_scale=u(0.85, 1.2), hand_right=bool(u() < 0.5),
        sleeve=bool(u() < 0.5),
        mask=bool(u() < p["mask"]), mask_top=u(0.12, 0.32))


def sample_light(rng: np.random.Generator, p: dict[str, float]) -> Light:
    u = rng.uniform
    if u() < p["side_light"]:
        d = np.array([rng.choice([-1, 1]) * u(0.6, 0.95), u(-0.5, 0.3), u(0.15, 0.5)])
    else:
        d = np.array([u(-0.45, 0.45), u(-0.6, -0.1), u(0.7, 1.0)])
    rim = None
    if u() < p["rim"]:
        rim = _unit(np.array([-np.sign(d[0]) * u(0.6, 0.9), u(-0.4, 0.2), u(0.1, 0.4)]))
    return Light(
        direction=_unit(d), colour=_tint(rng, p["tint"]), ambient=u(p["ambient_lo"], p["ambient_hi"]),
        ambient_colour=_tint(rng, p["tint"] * 0.5), softness_px=u(p["soft_lo"], p["soft_hi"]),
        shadow=u(0.45, 0.8), specular=u(0.5, 1.2), rim=rim, rim_colour=_tint(rng, 0.6),
        exposure=u(0.85, 1.15), vignette=u(0.0, 0.35))


def sample_spec(rng: np.random.Generator, style: str) -> FaceSpec:
    """Draw one face's description for ``style`` (one of :data:`STYLES`)."""
    p = _STYLE[style]
    u = rng.uniform
    pose = Pose(cx=0.5 + u(-p["shift"], p["shift"]), cy=0.4 + u(-p["shift"], p["shift"]),
                unit=u(p["unit_lo"], p["unit_hi"]), roll=_clipped_normal(rng, p["roll"], p["roll_max"]),
                yaw=_clipped_normal(rng, p["yaw"], p["yaw_max"]),
                pitch=_clipped_normal(rng, p["pitch"], 2 * p["pitch"]))
    features, hair, extras = sample_features(rng), sample_hair(rng), sample_extras(rng, p)
    body = Body(neck_w=u(0.5, 0.68), shoulder_y=u(1.75, 2.15), shoulder_w=u(2.4, 3.3),
                neckline=str(rng.choice(["crew", "v", "scoop", "collar"])),
                pattern=str(rng.choice(["plain", "stripes", "checks"], p=[0.6, 0.25, 0.15])),
                pattern_period=u(0.08, 0.35), pattern_angle=u(0, np.pi))
    light = sample_light(rng, p)
    background = ("cluttered" if u() < p["clutter"]
                  else str(rng.choice(["flat", "gradient", "textured"], p=[0.35, 0.4, 0.25])))
    return FaceSpec(style=style, pose=pose, features=features, hair=hair, extras=extras, body=body,
                    light=light, background=background, blur_px=u(p["blur_lo"], p["blur_hi"]),
                    noise=u(p["noise_lo"], p["noise_hi"]),
                    chroma_noise=u(0.0, 0.6) if style == "wild" else u(0.0, 0.15),
                    colours=material_colours(rng), shape_seed=int(rng.integers(2**31)))
