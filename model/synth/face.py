"""One synthetic face: its material map, exact label map and rendered photo.

A face is first drawn as a hard-edged map of materials (skin, iris, teeth, lens, sleeve, ...;
:mod:`model.synth.shapes`); its label map is a lookup of that map, so it is exact by
construction. The photo is then rendered from the same map (:mod:`model.synth.render`).
"""
from __future__ import annotations

import numpy as np

from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from model.synth.materials import label_lut
from model.synth.render import render_photo
from model.synth.shapes import draw_materials
from model.synth.spec import STYLES, sample_spec
from model.synth.visibility import label_visible_thin_parts

MIN_SIZE = 32
MAX_SIZE = 4096


def check_arguments(seed: int, style: str, size: int) -> None:
    """Raise :class:`FacetError` for an unknown style, a negative seed or a size out of range."""
    if style not in STYLES:
        raise FacetError(f"unknown style {style!r}; choose one of: {', '.join(STYLES)}")
    if seed < 0:
        raise FacetError(f"seed must be >= 0, got {seed}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise FacetError(f"size must be {MIN_SIZE} to {MAX_SIZE} pixels, got {size}")


def render_face(seed: int, size: int = 512, style: str = "studio",
                labels: LabelSet = CELEBAMASK) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic face: ``size x size x 3`` uint8 RGB and its ``size x size`` uint8 label map.

    Deterministic for ``(seed, size, style)``; the same seed at another size is the same face.
    Occluding hands and face masks get the ``hand``/``mask`` classes when ``labels`` has them
    (``LabelSet.celebamask(extras=True)``) and are background (0) otherwise, as CelebAMask-HQ
    leaves them unlabelled. Earrings and necklaces the photo does not show are labelled as
    what they hang over (:mod:`model.synth.visibility`). The photo does not depend on ``labels``.
    """
    materials, image = render_materials(seed, size, style)
    return image, label_lut(labels)[label_visible_thin_parts(materials, image)]


def render_materials(seed: int, size: int = 512,
                     style: str = "studio") -> tuple[np.ndarray, np.ndarray]:
    """The face of :func:`render_face` before it is labelled: its ``size x size`` material map
    (every drawn earring and necklace still in it, seen or not) and the ``size x size x 3``
    uint8 photo."""
    check_arguments(seed, style, size)
    spec_seq, texture_seq = np.random.SeedSequence([seed, STYLES.index(style)]).spawn(2)
    spec = sample_spec(np.random.default_rng(spec_seq), style)
    materials = draw_materials(spec, size)
    return materials, render_photo(materials, spec, np.random.default_rng(texture_seq))


def face_seed(seed: int, k: int) -> int:
    """The seed of face ``k`` in a tree written with ``seed`` (independent of the face count)."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1, dtype=np.uint64)[0] >> 1)
