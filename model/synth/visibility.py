"""Thin parts the photo does not show are not labelled.

An annotator labels the earring or necklace she can see. The material map knows every one the
generator drew, but blur, noise, harsh light and a colour close to the hair or skin behind can
leave a 1–3 px chain or stud invisible in the photo: looked at by eye on ``wild`` faces,
necklaces whose mean colour was 2–6 grey levels from the pixels around them could not be seen,
those at 15 and more could. Labelling the invisible ones teaches a parser to guess, and a score
against them rewards guessing. So after rendering, each connected piece of earring or necklace
(8-neighbours) whose mean colour differs from the pixels right around it by less than
:data:`MIN_CONTRAST` is given the material it hangs over (the nearest other material).

The test is per piece and on mean colours: a pendant joined to its chain is kept or dropped
with it, and a piece whose surroundings average to its own colour (a grey chain exactly on a
light/dark border) would be dropped although visible — not seen on generated faces so far;
a per-pixel local contrast would be the fix if it ever matters. ``bench/thin_visibility.py``
counts what the rule removes.
"""
from __future__ import annotations

import numpy as np

from model.synth.materials import MAT

THIN_MATERIALS: tuple[str, ...] = ("earring", "necklace", "pendant")
MIN_CONTRAST = 10.0
"""Largest per-channel difference (0–255) between the mean colour of a piece's pixels and of
the pixels around it, below which the piece is not labelled."""
AROUND_PX_PER_SIDE = 1 / 80
""""Around" a piece: non-thin pixels within ``size * AROUND_PX_PER_SIDE`` px of it (4-neighbour
steps, at least 2: 2 px at 160, 6 px at 512)."""


def _shift(a: np.ndarray, dy: int, dx: int, fill: int | bool) -> np.ndarray:
    """``a`` moved by ``(dy, dx)`` pixels (each -1, 0 or 1), ``fill`` coming in at the edge."""
    p = np.pad(a, 1, constant_values=fill)
    h, w = a.shape
    return p[1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


def _grow(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` dilated by ``steps`` pixels (4-neighbourhood)."""
    for _ in range(steps):
        mask = (mask | _shift(mask, 1, 0, False) | _shift(mask, -1, 0, False)
                | _shift(mask, 0, 1, False) | _shift(mask, 0, -1, False))
    return mask


def pieces(mask: np.ndarray) -> np.ndarray:
    """``H x W`` int64: for each ``mask`` pixel, the smallest flat index in its 8-connected
    piece; ``H * W`` outside the mask."""
    none = mask.size
    ids = np.where(mask, np.arange(none).reshape(mask.shape), none)
    flat_ids = np.append(ids.ravel(), none)  # index ``none`` points at itself
    while True:
        low = ids
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    low = np.minimum(low, _shift(ids, dy, dx, none))
        low = np.where(mask, low, none)
        flat_ids[:-1] = low.ravel()
        low = flat_ids[low]  # jump to the neighbour's own piece id: far fewer rounds
        if (low == ids).all():
            return ids
        ids = low
        flat_ids[:-1] = ids.ravel()


def unseen_thin_pixels(materials: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``H x W`` bool: thin-part pixels of ``materials`` (``H x W`` uint8 material ids) that
    ``image`` (``H x W x 3`` uint8, rendered from them) does not show."""
    thin = np.isin(materials, [MAT[m] for m in THIN_MATERIALS])
    unseen = np.zeros_like(thin)
    if not thin.any():
        return unseen
    ys, xs = np.nonzero(thin)
    reach = max(2, round(materials.shape[0] * AROUND_PX_PER_SIDE))
    y0, x0 = max(0, ys.min() - reach), max(0, xs.min() - reach)
    box = np.s_[y0:ys.max() + reach + 1, x0:xs.max() + reach + 1]
    thin_box, rgb = thin[box], image[box].astype(np.float32)
    ids = pieces(thin_box)
    around = _grow(thin_box, reach) & ~thin_box
    for piece_id in np.unique(ids[thin_box]):
        part = ids == piece_id
        near = _grow(part, reach) & around
        if near.any() and np.abs(rgb[part].mean(0) - rgb[near].mean(0)).max() < MIN_CONTRAST:
            unseen[box] |= part
    return unseen


def fill_from_neighbours(materials: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """A copy of ``materials`` (``H x W`` uint8) with the ``holes`` pixels (``H x W`` bool)
    given the material of the nearest pixel outside them (4-neighbour steps)."""
    out = materials.copy()
    todo = holes.copy()
    while todo.any():
        known = ~todo  # fixed for the round: each step takes only pixels one step closer
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            take = todo & _shift(known, dy, dx, False)
            out[take] = _shift(out, dy, dx, 0)[take]
            todo &= ~take
        if (~todo == known).all():
            break  # no pixel outside the holes at all
    return out


def label_visible_thin_parts(materials: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``materials`` with the thin parts that ``image`` does not show replaced by what is
    around them (see the module docstring); the same array when every one shows."""
    unseen = unseen_thin_pixels(materials, image)
    return fill_from_neighbours(materials, unseen) if unseen.any() else materials
