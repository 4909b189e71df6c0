"""The parser network, one file per part (as segment-anything's ``modeling/``).

``config`` holds the hyperparameters (:class:`ParserConfig`, saved in every checkpoint);
``network`` assembles :class:`FaceParser` from ``backbone`` (ResNet trunk), ``attention``
(the self-attention context stage), ``decoder`` and ``heads`` in :func:`build_face_parser`,
the only place a config becomes layers. Training targets and losses live in ``model/``.
"""
from __future__ import annotations

from model.net.config import ParserConfig
from model.net.network import FaceParser, build_face_parser, can_grow, grow_face_parser

__all__ = ["ParserConfig", "FaceParser", "build_face_parser", "can_grow", "grow_face_parser"]
