"""``serve``: the studio (Gradio UI + REST API) on one port (``serve --help``; the README's
command table)."""
from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

TaskQueueFactory = Callable[[Any, Any], Any]
"""``make_tasks(settings, options) -> TaskQueue | None`` (see :mod:`webapp.ports`)."""


def register(sub: argparse._SubParsersAction, make_tasks: TaskQueueFactory | None = None) -> None:
    """Add the ``serve`` sub-command to ``sub``.

    ``make_tasks`` builds the background task queue from the settings and
    :class:`~webapp.options.ServeOptions` (honouring ``--no-worker``); app.py passes the
    worker's, so this package never imports worker/. Without it, ``serve`` runs with no queue.
    """
    from model.sam_types import SAM_MODEL_TYPES

    p = sub.add_parser("serve", help="run the annotation studio (UI at /, REST API at /api)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--data-dir", default=None, help="data folder (default $FACET_DATA_DIR or ./data)")
    p.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")
    p.add_argument("--demo", type=int, default=0, metavar="N",
                   help="on an empty database, add N synthetic faces (half with labels)")
    p.add_argument("--sam-checkpoint", type=Path, default=None, metavar="PATH",
                   help="official Segment Anything checkpoint (.pth) to enable click-to-segment")
    p.add_argument("--sam-model", choices=SAM_MODEL_TYPES, default="vit_b",
                   help="architecture of --sam-checkpoint (default vit_b)")
    p.add_argument("--parser-checkpoint", type=Path, default=None, metavar="PATH",
                   help="parser checkpoint to register and activate when no model version exists")
    p.add_argument("--prior", type=Path, default=None, metavar="PATH",
                   help="face prior checkpoint that a database without models starts from "
                        "(default: the shipped assets/face-prior.pt)")
    p.add_argument("--no-prior", action="store_true",
                   help="start a new database without a model (random weights at the first run)")
    p.set_defaults(func=lambda args: run_serve(args, make_tasks))
    from webapp import foreign_cli  # add-parser: needs the model and the database
    foreign_cli.register(sub)


def options_from_args(args: argparse.Namespace):
    """:class:`webapp.options.ServeOptions` from parsed arguments (checks the port)."""
    from core.errors import FacetError
    from webapp.options import SHIPPED_PRIOR, ServeOptions

    if not 0 < args.port < 65536:
        raise FacetError(f"--port must be 1..65535, got {args.port}")
    if args.demo < 0:
        raise FacetError(f"--demo must be >= 0, got {args.demo}")
    return ServeOptions(host=args.host, port=args.port, no_worker=args.no_worker, demo=args.demo,
                        sam_checkpoint=args.sam_checkpoint, sam_model=args.sam_model,
                        parser_checkpoint=args.parser_checkpoint,
                        prior=None if args.no_prior else (args.prior or SHIPPED_PRIOR),
                        sam_onnx=os.environ.get("FACET_SAM_ONNX", "1").strip().lower()
                        not in ("0", "off", "false", "no"))


def run_serve(args: argparse.Namespace, make_tasks: TaskQueueFactory | None = None) -> int:
    """Handler of ``serve``: build the settings, options and task queue, then run."""
    from db.settings import Settings
    from webapp.server import serve

    settings = Settings.resolve(data_dir=args.data_dir)
    options = options_from_args(args)
    tasks = make_tasks(settings, options) if make_tasks is not None else None
    serve(settings, options, tasks)
    return 0
