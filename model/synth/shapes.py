"""The material map of one synthetic face: every part drawn back to front, hard-edged.

The order is the occlusion order: background hair, neck, clothes and necklace, the far ear,
the face, the near ear, the inner face (clipped to the skin), glasses temples, face mask,
hair over the face, hat, glasses, and a hand in front of everything.
"""
from __future__ import annotations

import numpy as np

from model.synth.canvas import Canvas
from model.synth.extras import (draw_glasses, draw_glasses_arms, draw_hand, draw_hat, draw_mask,
                                draw_neck_and_cloth, draw_necklace)
from model.synth.hair import draw_fringe, draw_hair_back, draw_hair_cap, draw_side_locks
from model.synth.head import draw_ear, draw_features, draw_skin
from model.synth.materials import MAT, ids
from model.synth.spec import FaceSpec

NEAR_EAR_YAW = 0.12
"""Above this yaw (radians) the ear on the near side is drawn over the cheek."""

SEEN_THROUGH_LENS = np.array(ids("l_sclera", "r_sclera", "l_iris", "r_iris", "l_pupil", "r_pupil",
                                 "l_catchlight", "r_catchlight", "l_lash", "r_lash", "l_brow",
                                 "r_brow"), dtype=np.uint8)
SEEN_THROUGH_LENS.flags.writeable = False
"""Materials that stay visible (and keep their label) behind clear lenses."""


def draw_materials(spec: FaceSpec, size: int) -> np.ndarray:
    """``size x size`` uint8 material ids (:data:`model.synth.materials.MATERIALS`)."""
    c = Canvas(size, spec.pose)
    rng = np.random.default_rng(spec.shape_seed)
    f, h, e = spec.features, spec.hair, spec.extras
    draw_hair_back(c, h, rng)
    draw_neck_and_cloth(c, spec.body)
    draw_necklace(c, spec.body, e)
    near = int(-np.sign(spec.pose.yaw)) if abs(spec.pose.yaw) > NEAR_EAR_YAW else 0
    for sx in (-1, 1):
        if sx != near:
            draw_ear(c, f, e, sx)
    draw_skin(c, f)
    if near:
        draw_ear(c, f, e, near)

    layer = c.layer()
    draw_features(layer, f, spec.light.direction, rng)
    feats, mats = layer.array(), c.array()
    mats = np.where((feats > 0) & (mats == MAT["skin"]), feats, mats)
    c.set_array(mats)

    draw_glasses_arms(c, f, e)
    draw_mask(c, f, e)
    draw_hair_cap(c, h, f, rng)
    draw_fringe(c, h, rng)
    draw_side_locks(c, h, f, rng)
    draw_hat(c, e)
    draw_glasses(c, f, e)
    if e.glasses == "clear":
        mats = c.array()
        through = (mats == MAT["lens"]) & np.isin(feats, SEEN_THROUGH_LENS)
        mats[through] = feats[through]
        c.set_array(mats)
    draw_hand(c, e, rng)
    return c.array()
