"""Colours of the synthetic faces, drawn from deliberately overlapping distributions.

Hair, hats, clothes, masks, glasses frames and the background all draw from
:func:`any_colour`, a wide mixture that includes skin tones and natural hair colours, and
everything skin-coloured (skin, nose, ears, neck, hands) shares one tone per face, so colour
alone does not tell the class. All colours are RGB albedos in ``[0, 1]``.
"""
from __future__ import annotations

import colorsys

import numpy as np

from model.synth.materials import MAT, NUM_MATERIALS, SKIN_LIKE

SKIN_LIGHT = np.array([0.93, 0.78, 0.67])
SKIN_MID = np.array([0.78, 0.56, 0.42])
SKIN_DARK = np.array([0.34, 0.21, 0.15])

HAIR_NATURAL = np.array([
    [0.10, 0.08, 0.07], [0.22, 0.15, 0.11], [0.38, 0.26, 0.17], [0.55, 0.40, 0.26],
    [0.80, 0.67, 0.47], [0.56, 0.26, 0.13], [0.58, 0.57, 0.55], [0.84, 0.83, 0.80],
])
"""Black, dark brown, brown, light brown, blond, red, grey, white."""

METALS = np.array([[0.83, 0.69, 0.30], [0.78, 0.78, 0.80], [0.72, 0.45, 0.30]])
"""Gold, silver, copper."""


def skin_tone(rng: np.random.Generator) -> np.ndarray:
    """One skin albedo (3,), anywhere from very light to very dark, with a warm/olive tilt."""
    t = rng.uniform()
    base = (SKIN_LIGHT + (SKIN_MID - SKIN_LIGHT) * t / 0.5 if t < 0.5
            else SKIN_MID + (SKIN_DARK - SKIN_MID) * (t - 0.5) / 0.5)
    tilt = np.array([rng.normal(0, 0.03), rng.normal(0, 0.025), rng.normal(0, 0.03)])
    return np.clip(base * (1 + tilt), 0.02, 1.0)


def hair_colour(rng: np.random.Generator) -> np.ndarray:
    """Mostly natural hair colours with jitter; sometimes dyed (any colour)."""
    if rng.uniform() < 0.15:
        return any_colour(rng)
    base = HAIR_NATURAL[rng.integers(len(HAIR_NATURAL))]
    return np.clip(base * rng.uniform(0.8, 1.2) + rng.normal(0, 0.03, 3), 0.02, 1.0)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def any_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour from a wide mixture: skin-like, hair-like, greys, pastels, saturated."""
    kind = rng.integers(5)
    if kind == 0:
        return skin_tone(rng)
    if kind == 1:
        return np.clip(HAIR_NATURAL[rng.integers(len(HAIR_NATURAL))] * rng.uniform(0.7, 1.3), 0, 1)
    if kind == 2:
        return np.full(3, rng.uniform(0.05, 0.95)) * rng.uniform(0.95, 1.05, 3)
    if kind == 3:
        return hsv(rng.uniform(), rng.uniform(0.1, 0.35), rng.uniform(0.55, 0.95))
    return hsv(rng.uniform(), rng.uniform(0.4, 0.95), rng.uniform(0.2, 0.9))


def material_colours(rng: np.random.Generator) -> np.ndarray:
    """``NUM_MATERIALS x 3`` albedos for one face (background's row is its base colour)."""
    col = np.zeros((NUM_MATERIALS, 3))
    skin = skin_tone(rng)
    for name in SKIN_LIKE:  # one tone: nose, ears, neck and hands differ by shape, not colour
        col[MAT[name]] = skin
    col[MAT["neck"]] *= rng.uniform(0.88, 1.0)
    col[MAT["hand"]] *= rng.uniform(0.95, 1.05)
    col[MAT["nail"]] = np.clip(skin * 1.1 + 0.08, 0, 1) if rng.uniform() < 0.7 else any_colour(rng)
    col[MAT["finger_gap"]] = skin * 0.55
    hair = hair_colour(rng)
    col[MAT["hair"]] = col[MAT["hair_back"]] = hair
    brow = hair * rng.uniform(0.5, 1.0) if rng.uniform() < 0.8 else hair_colour(rng) * 0.7
    brow_mix = rng.uniform(0.0, 0.45)  # sparse brows let skin through
    col[MAT["l_brow"]] = col[MAT["r_brow"]] = brow * (1 - brow_mix) + skin * brow_mix
    lip_target = (np.array([0.62, 0.22, 0.25]) if rng.uniform() < 0.6 else any_colour(rng) * 0.8)
    lip_mix = rng.uniform(0.08, 0.6)  # some lips are almost skin
    lip = skin * (1 - lip_mix) + lip_target * lip_mix
    col[MAT["u_lip"]] = lip * rng.uniform(0.85, 0.98)
    col[MAT["l_lip"]] = lip * rng.uniform(0.95, 1.05)
    col[MAT["mouth"]] = np.array([0.25, 0.08, 0.08]) * rng.uniform(0.4, 1.3)
    col[MAT["teeth"]] = np.array([0.88, 0.85, 0.76]) * rng.uniform(0.75, 1.0)
    col[MAT["tongue"]] = np.array([0.68, 0.33, 0.34]) * rng.uniform(0.7, 1.0)
    col[MAT["nostril"]] = skin * rng.uniform(0.25, 0.45)
    col[MAT["nose_crease"]] = skin * rng.uniform(0.75, 0.88)
    col[MAT["l_ear_in"]] = col[MAT["r_ear_in"]] = skin * rng.uniform(0.7, 0.85)
    beard_mix = rng.uniform(0.3, 0.9)  # stubble lets skin through
    col[MAT["beard"]] = hair * beard_mix + skin * (1 - beard_mix)
    sclera = np.array([0.92, 0.90, 0.86]) * rng.uniform(0.7, 0.95)
    col[MAT["l_sclera"]] = col[MAT["r_sclera"]] = sclera
    iris = [np.array([0.30, 0.18, 0.10]), np.array([0.35, 0.50, 0.65]),
            np.array([0.35, 0.45, 0.30]), np.array([0.45, 0.45, 0.45])][rng.integers(4)]
    col[MAT["l_iris"]] = col[MAT["r_iris"]] = iris * rng.uniform(0.6, 1.2)
    col[MAT["l_pupil"]] = col[MAT["r_pupil"]] = np.full(3, 0.03)
    col[MAT["l_lash"]] = col[MAT["r_lash"]] = np.minimum(hair, 0.3) * 0.5
    col[MAT["l_catchlight"]] = col[MAT["r_catchlight"]] = np.full(3, 0.97)
    for name in ("hat", "cloth", "frame", "background"):
        col[MAT[name]] = any_colour(rng)
    col[MAT["hat_band"]] = any_colour(rng) if rng.uniform() < 0.5 else col[MAT["hat"]] * 0.8
    col[MAT["cloth_trim"]] = any_colour(rng) if rng.uniform() < 0.5 else col[MAT["cloth"]] * 0.85
    col[MAT["sleeve"]] = col[MAT["cloth"]] if rng.uniform() < 0.6 else any_colour(rng)
    col[MAT["lens"]] = any_colour(rng) * 0.25  # only seen in sunglasses; clear lenses tint
    mask = (np.array([0.62, 0.78, 0.88]) if rng.uniform() < 0.4
            else np.array([0.93, 0.93, 0.92]) if rng.uniform() < 0.3 else any_colour(rng))
    col[MAT["mask"]] = mask
    col[MAT["mask_fold"]] = mask * 0.88
    col[MAT["strap"]] = mask * rng.uniform(0.85, 1.0)
    for name in ("earring", "necklace", "pendant"):
        col[MAT[name]] = (METALS[rng.integers(len(METALS))] if rng.uniform() < 0.6
                          else any_colour(rng))
    return col.astype(np.float32)
