"""Options of ``serve``, independent of argparse so tests and app.py can build them."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = ("localhost",)
SHIPPED_PRIOR = Path(__file__).resolve().parents[1] / "assets" / "face-prior.pt"
"""The synthetic face prior that ships with Facet (docs/PRIOR.md says how it was made)."""


@dataclass(frozen=True)
class ServeOptions:
    """How to run the studio.

    ``no_worker``: for whoever builds the task queue (app.py); the studio itself only sees
    whether :func:`webapp.server.serve` got one. ``sam_builders``: architecture builders by SAM model type instead of segment_anything's
    registry (tests use a tiny SAM; not a command-line flag). ``lease_seconds``: how long
    "next image" reserves an image for one annotator. ``demo_size``: side of the
    synthetic ``--demo`` faces in pixels. ``max_upload_bytes`` / ``max_label_bytes``: the
    largest image upload and label-map PNG a request may carry (:mod:`webapp.body_limits`).
    ``prior``: the parser checkpoint that becomes the first model version of a database
    without any (``--parser-checkpoint`` wins over it; ``None``: start from random weights).
    ``sam_onnx``: SAM clicks through ONNX Runtime (``FACET_SAM_ONNX=0`` turns it off).
    """

    host: str = "127.0.0.1"
    port: int = 7860
    no_worker: bool = False
    demo: int = 0
    sam_checkpoint: Path | None = None
    sam_model: str = "vit_b"
    parser_checkpoint: Path | None = None
    lease_seconds: float = 900.0
    demo_size: int = 512
    max_upload_bytes: int = 64 * 2**20
    max_label_bytes: int = 32 * 2**20
    prior: Path | None = SHIPPED_PRIOR
    sam_onnx: bool = True
    sam_builders: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.x.x.x`` and ``::1`` (what "local only" means here)."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
