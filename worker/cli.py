"""``python app.py worker [--data-dir DIR] [--workers N] [--queues train,light]``: run the Huey
consumers (one per queue taken)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``worker`` sub-command to ``sub``."""
    p = sub.add_parser(
        "worker", help="run the background worker (Huey consumer for the tasks in worker/)",
        description="Run the Huey consumer: pre-annotations, SAM embeddings, retraining and "
                    "scoring. It may run on another machine (e.g. one with a GPU) given the "
                    "same database URL, queue URL and a shared data dir. Tuning comes from "
                    "FACET_* environment variables (see worker/options.py).")
    p.add_argument("--data-dir", help="data directory (default: $FACET_DATA_DIR or ./data)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default: $FACET_WORKERS or 2); training runs in one "
                        "of them at a time, the others keep serving pre-annotations; with "
                        "both queues, each queue's consumer has this many")
    p.add_argument("--queues", default=None, metavar="train,light",
                   help="queues this worker takes, comma-separated: train (training runs: the "
                        "GPU box), light (pre-annotations, embeddings, scoring, retrain checks: "
                        "CPU boxes); default both")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from db.settings import Settings
    from worker.consumer import run_consumer
    from worker.options import WorkerOptions
    from worker.queue import parse_routes

    routes = parse_routes(args.queues)  # a bad name: one line, before anything starts
    overrides = {} if args.workers is None else {"workers": args.workers}
    options = WorkerOptions.from_env(**overrides)
    return run_consumer(Settings.resolve(data_dir=args.data_dir), options, routes)
