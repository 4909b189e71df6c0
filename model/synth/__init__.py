"""Synthetic, photo-like faces with exact label maps, for demos, tests and benchmarks.

A face is first drawn as a hard-edged map of materials (skin, iris, teeth, lens, sleeve, ...;
:mod:`model.synth.shapes`); its label map is a lookup of that map, so it is exact by
construction. The photo is then rendered from the same map (:mod:`model.synth.render`):
textures, light, shadows, highlights, blur and noise. Colours are drawn from overlapping
distributions, so a parser has to use shape and context, not colour alone.

Left and right: ``l_eye``, ``l_brow`` and ``l_ear`` are on the image's LEFT (smaller x) as
you look at the picture. A horizontal flip of the image with :meth:`LabelSet.flip` of the
labels gives another valid face.

Styles (:data:`STYLES`): ``studio`` (the default) and ``wild``, the shifted domain with
hands and face masks over most faces, harsh coloured side light, more pose, more blur and
noise, cluttered backgrounds and JPEG artefacts.
"""
from __future__ import annotations

from model.synth.face import face_seed, render_face
from model.synth.spec import STYLES
from model.synth.tree import write_synth_tree

__all__ = ["STYLES", "render_face", "face_seed", "write_synth_tree"]
