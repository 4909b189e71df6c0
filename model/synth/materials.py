"""Materials of the synthetic faces: what is drawn, and which label each one carries.

The shapes are drawn once, as a map of *material* ids; the label map is a lookup of that map
(:func:`label_lut`), so labels and pixels can never disagree. Several materials share a
label (iris, pupil and sclera are all the eye; teeth are the mouth; a sleeve is cloth).
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from core.labels import LabelSet

MATERIALS: tuple[tuple[str, str], ...] = (
    ("background", "background"), ("skin", "skin"), ("nose", "nose"), ("frame", "eye_g"),
    ("l_sclera", "l_eye"), ("r_sclera", "r_eye"), ("l_brow", "l_brow"), ("r_brow", "r_brow"),
    ("l_ear", "l_ear"), ("r_ear", "r_ear"), ("mouth", "mouth"), ("u_lip", "u_lip"),
    ("l_lip", "l_lip"), ("hair", "hair"), ("hat", "hat"), ("earring", "ear_r"),
    ("necklace", "neck_l"), ("neck", "neck"), ("cloth", "cloth"), ("hand", "hand"),
    ("mask", "mask"),
    ("l_iris", "l_eye"), ("r_iris", "r_eye"), ("l_pupil", "l_eye"), ("r_pupil", "r_eye"),
    ("l_lash", "l_eye"), ("r_lash", "r_eye"), ("l_catchlight", "l_eye"), ("r_catchlight", "r_eye"),
    ("teeth", "mouth"), ("tongue", "mouth"), ("nostril", "nose"), ("lens", "eye_g"),
    ("hat_band", "hat"), ("cloth_trim", "cloth"), ("sleeve", "cloth"), ("nail", "hand"),
    ("finger_gap", "hand"), ("strap", "mask"), ("mask_fold", "mask"), ("pendant", "neck_l"),
    ("hair_back", "hair"), ("l_ear_in", "l_ear"), ("r_ear_in", "r_ear"), ("nose_crease", "nose"),
    ("beard", "skin"),
)
"""``(material, label name)``; the index is the material id drawn in the material map."""

MAT: MappingProxyType[str, int] = MappingProxyType({name: i for i, (name, _) in enumerate(MATERIALS)})
"""Material name → id (read-only)."""

NUM_MATERIALS = len(MATERIALS)

def label_lut(labels: LabelSet) -> np.ndarray:
    """``NUM_MATERIALS`` uint8 lookup: material id → id in ``labels`` (absent classes → 0)."""
    return np.array([labels.id(lab) if lab in labels.names else 0 for _, lab in MATERIALS],
                    dtype=np.uint8)


def ids(*names: str) -> list[int]:
    """Material ids of ``names``."""
    return [MAT[n] for n in names]


def lut(values: dict[str, float], default: float = 0.0) -> np.ndarray:
    """``NUM_MATERIALS`` float32 read-only lookup from a ``{material: value}`` dict."""
    out = np.full(NUM_MATERIALS, default, dtype=np.float32)
    for name, value in values.items():
        out[MAT[name]] = value
    out.flags.writeable = False
    return out


SKIN_LIKE = ("skin", "nose", "l_ear", "r_ear", "neck", "hand")
"""Materials that take the person's skin tone."""

ELEVATION = lut({
    "cloth": 2.0, "sleeve": 5.0, "cloth_trim": 2.1, "neck": 2.4, "necklace": 2.6, "pendant": 2.7,
    "hair_back": 1.4, "l_ear": 3.4, "r_ear": 3.4, "l_ear_in": 3.2, "r_ear_in": 3.2, "earring": 3.5,
    "skin": 4.0, "beard": 4.1, "nose": 5.0, "nostril": 4.6, "nose_crease": 4.6, "frame": 4.9,
    "lens": 4.1, "l_sclera": 3.8, "r_sclera": 3.8, "l_iris": 3.8, "r_iris": 3.8, "l_pupil": 3.8,
    "r_pupil": 3.8, "l_lash": 3.9, "r_lash": 3.9, "l_catchlight": 3.8, "r_catchlight": 3.8,
    "l_brow": 4.15, "r_brow": 4.15, "mouth": 3.7, "teeth": 3.8, "tongue": 3.7, "u_lip": 4.25,
    "l_lip": 4.25, "hair": 4.5, "hat": 5.3, "hat_band": 5.3, "mask": 4.5, "mask_fold": 4.45,
    "strap": 4.3, "hand": 6.2, "nail": 6.3, "finger_gap": 5.6,
})
"""Height above the background wall (arbitrary units): drives normals, occlusion and cast shadows."""
