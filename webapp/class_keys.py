"""The keyboard shortcut of each class, derived from the LabelSet (the editor shows and uses
them)."""
from core.labels import LabelSet

_LETTERS = {"mouth": "m", "u_lip": "u", "l_lip": "l", "hair": "h", "hat": "t", "ear_r": "r",
            "neck_l": "k", "neck": "n", "cloth": "c", "hand": "a", "mask": "f"}
"""Shortcut letters for ids above 9 (0-9 are the digit keys)."""


def shortcut(label_set: LabelSet, class_id: int) -> str:
    """The key that selects ``class_id``: its digit for 0-9, else a mnemonic letter."""
    if class_id <= 9:
        return str(class_id)
    return _LETTERS.get(label_set.names[class_id], "")
