"""Parser checkpoints: weights, the :class:`ParserConfig`, the label set and training metadata,
in one file written atomically. Loading rebuilds the model from the file alone."""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import FacetError
from core.imageio import write_atomic
from core.labels import LabelSet
from model.net import FaceParser, ParserConfig, build_face_parser

FORMAT = "facet-parser"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``model`` (in eval mode, on the requested device) and what built it."""

    model: FaceParser
    config: ParserConfig
    labels: LabelSet
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: ParserConfig,
                    labels: LabelSet, meta: dict[str, Any] | None = None,
                    half: bool = False) -> None:
    """Write ``model``'s weights with its config, label names and ``meta`` to ``path``.
    ``half``: floating-point weights stored as float16 (half the file; loading casts them
    back to the model's float32).

    ``meta`` must be JSON-serialisable (a ``ValueError`` otherwise) so that loading never
    needs to unpickle arbitrary objects. The file appears atomically (temp file + rename).
    """
    if config.num_classes != labels.num_classes:
        raise ValueError(f"config has {config.num_classes} classes, label set {labels.num_classes}")
    try:
        meta = json.loads(json.dumps(meta or {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"checkpoint meta must be JSON-serialisable: {err}") from None
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {"format": FORMAT, "version": VERSION, "config": config.to_dict(),
               "labels": list(labels.names), "meta": meta, "state_dict": state}
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model saved by :func:`save_checkpoint`; a :class:`FacetError` for a missing,
    truncated or unknown file.

    Every loader goes through here (:class:`model.inference.Predictor`, the predictor cache,
    training's ``init`` / ``teacher``, the worker): a ``facet-foreign`` file (a brought
    TorchScript / ONNX parser, :mod:`model.foreign`) loads as a :class:`Checkpoint` whose
    ``model`` is a :class:`model.foreign.ForeignParser` and whose ``meta["foreign"]`` is its
    spec. Nothing is unpickled beyond tensors and plain containers (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FacetError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle errors, ...: all mean "not readable"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FacetError(f"cannot read checkpoint {path}: {first}") from None
    if isinstance(payload, dict) and payload.get("format") == "facet-foreign":
        from model.foreign import load_foreign  # a brought parser (model/foreign.py)

        return load_foreign(payload, path, device)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise FacetError(f"{path} is not a Facet parser checkpoint")
    if payload.get("version") != VERSION:
        raise FacetError(f"{path}: checkpoint version {payload.get('version')} is not supported")
    try:
        labels = LabelSet(tuple(payload["labels"]))
        config = ParserConfig.from_dict(payload["config"])
        model = build_face_parser(config, load_backbone_weights=False)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0]
        raise FacetError(f"{path}: damaged checkpoint ({first})") from None
    model.to(device).eval()
    return Checkpoint(model, config, labels, dict(payload.get("meta") or {}))
