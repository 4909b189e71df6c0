"""The label set: the one definition of class ids, names, colours, flips and foreign orders.

Canonical ids follow CelebAMask-HQ's ``g_mask.py`` order (docs/ARCHITECTURE.md,
"Label set"). Everything else in Facet derives from :class:`LabelSet`; no other module spells
out class ids.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CELEBAMASK_NAMES: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow",
    "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l",
    "neck", "cloth",
)
"""The 19 canonical classes; index = id."""

EXTRA_NAMES: tuple[str, ...] = ("hand", "mask")
"""Occlusion classes a project may opt in to, appended after id 18."""

THIN_CLASSES: tuple[str, ...] = ("ear_r", "neck_l")
"""The rare, thin classes (earring, necklace): a few pixels wide and often missed, so they get
extra cross-entropy weight in training (``model.losses.LossConfig``) and count more in the
uncertainty that orders the annotation queue (``model.inference.Predictor.uncertainty``)."""

HUMAN_NAMES: dict[str, str] = {
    "background": "background", "skin": "skin", "nose": "nose", "eye_g": "glasses",
    "l_eye": "left eye", "r_eye": "right eye", "l_brow": "left brow", "r_brow": "right brow",
    "l_ear": "left ear", "r_ear": "right ear", "mouth": "mouth (inner)", "u_lip": "upper lip",
    "l_lip": "lower lip", "hair": "hair", "hat": "hat", "ear_r": "earring",
    "neck_l": "necklace", "neck": "neck", "cloth": "clothes", "hand": "hand", "mask": "face mask",
}

# RGB colours, chosen to be distinct on screen; background is black.
_PALETTE: dict[str, tuple[int, int, int]] = {
    "background": (0, 0, 0), "skin": (204, 153, 102), "nose": (255, 128, 0),
    "eye_g": (102, 102, 255), "l_eye": (0, 204, 255), "r_eye": (0, 102, 204),
    "l_brow": (153, 0, 76), "r_brow": (255, 51, 153), "l_ear": (102, 204, 0),
    "r_ear": (0, 153, 76), "mouth": (255, 255, 0), "u_lip": (255, 0, 0),
    "l_lip": (153, 0, 0), "hair": (102, 51, 0), "hat": (255, 153, 255),
    "ear_r": (0, 255, 153), "neck_l": (255, 255, 153), "neck": (255, 204, 204),
    "cloth": (0, 102, 102), "hand": (153, 255, 255), "mask": (204, 204, 204),
}

_LEFT_RIGHT_PAIRS: tuple[tuple[str, str], ...] = (
    ("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear"),
)

BISENET_ORDER: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear",
    "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
"""Class order of the widely used BiSeNet face-parsing checkpoints (id = index)."""

FARL_ORDER: tuple[str, ...] = (
    "background", "neck", "skin", "cloth", "r_ear", "l_ear", "r_brow", "l_brow", "r_eye",
    "l_eye", "nose", "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l",
)
"""Class order of FaRL's / SegFace's CelebAMask-HQ ('celebm') heads (id = index)."""

FOREIGN_ORDERS: dict[str, tuple[str, ...]] = {"bisenet": BISENET_ORDER, "farl": FARL_ORDER,
                                               "segface": FARL_ORDER}


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of classes. ``names[i]`` is the class with id ``i``.

    Label maps are 2-D ``uint8`` arrays of these ids.
    """

    names: tuple[str, ...] = CELEBAMASK_NAMES
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"duplicate class names in {self.names}")
        if self.names[:1] != ("background",):
            raise ValueError("id 0 must be 'background'")
        if len(self.names) > 255:
            raise ValueError("at most 255 classes fit a uint8 label map")
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})

    @classmethod
    def celebamask(cls, extras: bool = False) -> "LabelSet":
        """The 19 CelebAMask-HQ classes, plus ``hand`` and ``mask`` when ``extras``."""
        return cls(CELEBAMASK_NAMES + (EXTRA_NAMES if extras else ()))

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def id(self, name: str) -> int:
        """Id of a class name; ``KeyError`` naming the unknown class otherwise."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"unknown class {name!r}") from None

    def human_name(self, class_id: int) -> str:
        return HUMAN_NAMES.get(self.names[class_id], self.names[class_id])

    @property
    def palette(self) -> np.ndarray:
        """``num_classes x 3`` uint8 RGB colours, row = class id."""
        return np.array([_PALETTE[n] for n in self.names], dtype=np.uint8)

    def hex_colors(self) -> list[str]:
        """``#rrggbb`` per class id."""
        return ["#%02x%02x%02x" % tuple(int(c) for c in rgb) for rgb in self.palette]

    @property
    def flip_table(self) -> np.ndarray:
        """``num_classes`` uint8 lookup: id after a horizontal flip (l_/r_ pairs swapped)."""
        table = np.arange(self.num_classes, dtype=np.uint8)
        for left, right in _LEFT_RIGHT_PAIRS:
            if left in self._index and right in self._index:
                table[self._index[left]], table[self._index[right]] = (
                    self._index[right], self._index[left])
        return table

    def flip(self, label_map: np.ndarray) -> np.ndarray:
        """Mirror an ``H x W`` label map left-right and swap the l_/r_ classes."""
        return self.flip_table[label_map[:, ::-1]]

    def colorize(self, label_map: np.ndarray) -> np.ndarray:
        """``H x W`` ids → ``H x W x 3`` uint8 RGB using :attr:`palette`."""
        self.validate(label_map)
        return self.palette[label_map]

    def from_colors(self, rgb: np.ndarray) -> np.ndarray:
        """``H x W x 3`` palette colours → ``H x W`` ids; ``ValueError`` on any other colour."""
        codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        pal = self.palette.astype(np.int64)
        pal_codes = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        order = np.argsort(pal_codes)
        pos = np.searchsorted(pal_codes[order], codes).clip(0, len(order) - 1)
        ids = order[pos]
        bad = pal_codes[ids] != codes
        if bad.any():
            y, x = np.argwhere(bad)[0]
            raise ValueError(f"colour {tuple(int(c) for c in rgb[y, x])} at (x={x}, y={y}) "
                             "is not in the label palette")
        return ids.astype(np.uint8)

    def validate(self, label_map: np.ndarray) -> None:
        """Raise ``ValueError`` unless ``label_map`` is a 2-D uint8 array of known ids."""
        if label_map.ndim != 2:
            raise ValueError(f"a label map is 2-D, got shape {label_map.shape}")
        if label_map.dtype != np.uint8:
            raise ValueError(f"a label map is uint8, got {label_map.dtype}")
        top = int(label_map.max(initial=0))
        if top >= self.num_classes:
            raise ValueError(f"label id {top} out of range (0..{self.num_classes - 1})")

    def remap_table(self, order: str | tuple[str, ...], to_canonical: bool = True) -> np.ndarray:
        """Lookup table between a foreign class order and this set.

        ``to_canonical``: foreign id → our id (classes we lack map to 0). Otherwise our id →
        foreign id. ``order`` is a name in :data:`FOREIGN_ORDERS` or a tuple of class names.
        """
        names = FOREIGN_ORDERS[order] if isinstance(order, str) else order
        if to_canonical:
            return np.array([self._index.get(n, 0) for n in names], dtype=np.uint8)
        foreign = {n: i for i, n in enumerate(names)}
        return np.array([foreign.get(n, 0) for n in self.names], dtype=np.uint8)


CELEBAMASK = LabelSet.celebamask()
"""The default 19-class set (immutable)."""
