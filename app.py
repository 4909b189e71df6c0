"""Facet's command line: serve, worker, import, export, synth, train, evaluate, predict, stats,
users, db (docs/ARCHITECTURE.md, "Command line").

Each package registers its own sub-commands; this file only assembles them and turns
user errors into one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from core.errors import FacetError

if TYPE_CHECKING:
    from db.settings import Settings
    from webapp.options import ServeOptions
    from worker.client import HueyTaskQueue


def build_parser() -> argparse.ArgumentParser:
    import db.cli
    import model.cli
    import webapp.cli
    import worker.cli

    parser = argparse.ArgumentParser(prog="facet", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    webapp.cli.register(sub, make_tasks=worker_task_queue)   # serve
    worker.cli.register(sub)   # worker
    db.cli.register(sub)       # import, export, stats, users, db
    model.cli.register(sub)    # synth, train, evaluate, predict
    return parser


def worker_task_queue(settings: Settings, options: ServeOptions) -> HueyTaskQueue:
    """The studio's task queue for ``serve``: Huey messages to the worker (webapp ← worker).

    Without ``--no-worker`` a consumer child process is started beside the web server (and
    stopped with it); with ``--no-worker`` the tasks wait in the queue for workers started
    elsewhere with ``python app.py worker`` (same database, queue and data dir). A child that
    dies is started again (:class:`worker.supervisor.WorkerSupervisor`).
    """
    from worker.child_process import start_worker_process
    from worker.client import HueyTaskQueue
    from worker.options import WorkerOptions
    from worker.supervisor import WorkerSupervisor

    if not options.no_worker:
        # the worker then knows the SAM model too, and redoes embeddings a crash lost
        sam = {} if not options.sam_checkpoint else {
            "FACET_SAM_CHECKPOINT": str(options.sam_checkpoint),
            "FACET_SAM_MODEL": options.sam_model}
        supervisor = WorkerSupervisor(
            lambda: start_worker_process(settings, env=sam, stop_at_exit=False))
        print(f"worker: started (pid {supervisor.current.pid}, log {supervisor.current.log_path}; "
              "started again if it dies)", file=sys.stderr)
    worker_options = WorkerOptions.from_env()  # the train timeout and SAM defaults it sends
    sam_checkpoint = str(options.sam_checkpoint) if options.sam_checkpoint else None
    return HueyTaskQueue(settings, worker_options, sam_checkpoint=sam_checkpoint,
                         sam_model=options.sam_model)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (FacetError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
