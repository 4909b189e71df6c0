"""Facet's command line (DESIGN.md): serve, worker, import, export, synth, train, evaluate,
predict, stats, users, db.

Each package registers its own sub-commands; this file only assembles them and turns
user errors into one line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import sys

from model.errors import FacetError


def build_parser() -> argparse.ArgumentParser:
    import db.cli
    import model.cli
    import worker.cli
    import webapp.cli

    parser = argparse.ArgumentParser(prog="facet", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    webapp.cli.register(sub)   # serve
    worker.cli.register(sub)   # worker
    db.cli.register(sub)       # import, export, stats, users, db
    model.cli.register(sub)    # synth, train, evaluate, predict
    return parser


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
