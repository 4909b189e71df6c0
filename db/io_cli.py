"""The ``import`` and ``export`` commands (the README's command table; the file layout:
docs/ARCHITECTURE.md, "CelebAMask-HQ format"); db/cli.py calls :func:`register`."""
from __future__ import annotations

import argparse
from pathlib import Path

from db.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``import PATH [--data-dir]`` and ``export OUT [--data-dir] [--status] [--zip]``."""
    from db.exporter import EXPORT_STATUSES

    imp = sub.add_parser("import", help="import a folder of images, a CelebAMask-HQ tree, or a .zip",
                         description="Import a folder of images (jpg, jpeg, png, webp, bmp; "
                         "recursive), a CelebAMask-HQ tree, or a .zip of either. Bad files are "
                         "named with their reason; good files still land.")
    imp.add_argument("path", type=Path, metavar="PATH")
    imp.add_argument("--data-dir", default=None, help="data folder (default: $FACET_DATA_DIR or ./data)")
    imp.set_defaults(func=run_import)

    exp = sub.add_parser("export", help="export labelled images as a CelebAMask-HQ tree",
                         description="Write labelled images in the CelebAMask-HQ layout.")
    exp.add_argument("out", type=Path, metavar="OUT")
    exp.add_argument("--data-dir", default=None, help="data folder (default: $FACET_DATA_DIR or ./data)")
    exp.add_argument("--status", choices=EXPORT_STATUSES, default="submitted",
                     help="latest revision approved | submitted or approved | any (default: submitted)")
    exp.add_argument("--zip", action="store_true", help="write OUT as a .zip with the same layout")
    exp.set_defaults(func=run_export)


def run_import(args: argparse.Namespace) -> int:
    """Handler of ``import``: prints the summary and the bad files; 2 when every file was bad."""
    from db.database import open_database
    from db.engine import session_scope
    from db.importer import import_path

    settings = Settings.resolve(data_dir=args.data_dir)
    if not args.path.exists():  # before anything is created
        raise FileNotFoundError(f"{args.path}: no such file or folder")
    factory = open_database(settings)
    try:
        with session_scope(factory) as session:
            report = import_path(session, settings, args.path, progress=True)
    finally:
        factory.kw["bind"].dispose()
    print("\n".join(report.lines()))
    return report.exit_code


def run_export(args: argparse.Namespace) -> int:
    """Handler of ``export``: writes the tree (or zip) and prints one summary line."""
    from db.database import open_database
    from db.engine import session_scope
    from db.exporter import export_dataset

    settings = Settings.resolve(data_dir=args.data_dir)
    factory = open_database(settings)
    try:
        with session_scope(factory) as session:
            report = export_dataset(session, settings, args.out, status=args.status,
                                    as_zip=args.zip, progress=True)
    finally:
        factory.kw["bind"].dispose()
    print(report.line())
    return 0
