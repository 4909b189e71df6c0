"""Sub-commands of the db package: ``db upgrade``, ``stats``, ``users add|passwd|list``,
``delete-image``, ``sweep-files``, and the ``import`` / ``export`` commands of
:mod:`db.io_cli` when present.

Every command opens the database through :func:`db.database.open_database`, which migrates
a fresh or older database to the newest schema first.
"""
from __future__ import annotations

import argparse
import getpass
import importlib
import importlib.util
import json
import sys

from core.errors import FacetError
from db.database import current_revision, open_database
from db.engine import session_scope
from db.settings import Settings
from db.stats import compute_stats, format_stats
from db.users import create_user, get_user_by_name, list_users, parse_role, set_password


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve(data_dir=args.data_dir)


def _data_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=None,
                        help="data folder (default: $FACET_DATA_DIR or ./data)")


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    open_database(settings).kw["bind"].dispose()
    print(f"database at migration {current_revision(settings.database_url)}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    sessions = open_database(_settings(args))
    with session_scope(sessions) as session:
        stats = compute_stats(session)
    print(json.dumps(stats.as_dict()) if args.json else format_stats(stats))
    return 0


def read_password(stream=None) -> str:
    """One password: ``getpass`` twice on a terminal, else the first line of ``stream``."""
    stream = stream or sys.stdin
    if stream.isatty():
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise FacetError("the two passwords differ")
    else:
        password = stream.readline().rstrip("\r\n")
    if not password:
        raise FacetError("refusing an empty password (give it on stdin, one line)")
    return password


def cmd_users_add(args: argparse.Namespace) -> int:
    role = parse_role(args.role)  # before asking for a password
    sessions = open_database(_settings(args))
    password = read_password()
    with session_scope(sessions) as session:
        user = create_user(session, args.name, password, role)
        print(f"added {user.role.value} {user.name!r}")
    return 0


def cmd_users_passwd(args: argparse.Namespace) -> int:
    sessions = open_database(_settings(args))
    with session_scope(sessions) as session:  # an unknown name fails before the prompt
        if get_user_by_name(session, args.name) is None:
            raise FacetError(f"no user named {args.name!r} (see: python app.py users list)")
    password = read_password()
    with session_scope(sessions) as session:
        user = set_password(session, args.name, password)
        print(f"changed the password of {user.name!r}; the old one no longer works")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    sessions = open_database(_settings(args))
    with session_scope(sessions) as session:
        users = list_users(session)
        if not users:
            print("no users (serve runs open, on loopback only)")
        width = max((len(u.name) for u in users), default=0)
        for user in users:
            print(f"{user.name:<{width}}  {user.role.value:<9}  {user.created_at:%Y-%m-%d %H:%M}")
    return 0


def cmd_delete_image(args: argparse.Namespace) -> int:
    """Delete one image with all its data (``db.deletion``): rows first, files after the commit."""
    from db.deletion import KEPT_NOTE, checkpoint_wal, delete_image, remove_files

    if not args.yes:
        raise FacetError(f"refusing to delete image {args.image_id} without --yes: this removes "
                         "the image, all its revisions, predictions and SAM embeddings and its "
                         "files on disk for good (only a record of the deletion stays)")
    settings = _settings(args)
    sessions = open_database(settings)
    try:
        with session_scope(sessions) as session:
            pending = delete_image(session, settings, args.image_id, None, args.reason)
        with session_scope(sessions) as session:
            checkpoint_wal(session)
        record = remove_files(settings, pending)
    finally:
        sessions.kw["bind"].dispose()
    print(f"deleted image {record.image_id} (deletion record {record.id}): removed "
          f"{record.removed_line()}")
    if record.files_failed:
        print(f"warning: {record.files_failed} file(s) could not be removed; run "
              "`python app.py sweep-files --yes` later", file=sys.stderr)
    print(KEPT_NOTE)
    return 0


def cmd_sweep_files(args: argparse.Namespace) -> int:
    """Remove files no row refers to (left by an interrupted deletion or import)."""
    from db.deletion import sweep_orphans

    settings = _settings(args)
    sessions = open_database(settings)
    try:
        with session_scope(sessions) as session:
            report = sweep_orphans(session, settings, min_age_s=args.min_age_hours * 3600,
                                   dry_run=not args.yes)
    finally:
        sessions.kw["bind"].dispose()
    print(report.line() + ("" if args.yes or not report.orphans else "; add --yes to remove them"))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``db``, ``stats``, ``users``, ``delete-image``, ``sweep-files`` (and
    ``import``/``export`` from db.io_cli)."""
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = db_sub.add_parser("upgrade", help="migrate the database to the newest schema")
    _data_dir_flag(up)
    up.set_defaults(func=cmd_db_upgrade)

    stats = sub.add_parser("stats", help="counts: images, annotated, submitted, approved, "
                                         "class pixel shares, model versions")
    _data_dir_flag(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=cmd_stats)

    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = users_sub.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", required=True, metavar="annotator|reviewer|admin")
    _data_dir_flag(add)
    add.set_defaults(func=cmd_users_add)
    pw = users_sub.add_parser("passwd", help="change a user's password; the new one is read "
                                             "from stdin")
    pw.add_argument("name")
    _data_dir_flag(pw)
    pw.set_defaults(func=cmd_users_passwd)
    ls = users_sub.add_parser("list", help="list users and roles")
    _data_dir_flag(ls)
    ls.set_defaults(func=cmd_users_list)

    rm = sub.add_parser("delete-image", help="delete an image with all its data (admin)",
                        description="Delete an image for good: its revisions, predictions, SAM "
                        "embeddings, queue state and files on disk. A record of the deletion "
                        "(id, when, reason, counts; no file name or hash) stays. Model "
                        "checkpoints trained on it are kept.")
    rm.add_argument("image_id", type=int, metavar="ID")
    rm.add_argument("--reason", default=None, help="why (kept in the deletion record)")
    rm.add_argument("--yes", action="store_true", help="really delete (required)")
    _data_dir_flag(rm)
    rm.set_defaults(func=cmd_delete_image)

    sweep = sub.add_parser("sweep-files", help="remove files no database row refers to",
                           description="List (with --yes: remove) SAM embedding files of "
                           "deleted images and image files no image row names (those older "
                           "than --min-age-hours; an import writes files before their rows).")
    sweep.add_argument("--yes", action="store_true", help="remove them (default: only count)")
    sweep.add_argument("--min-age-hours", type=float, default=24.0,
                       help="leave unreferenced image files younger than this (default 24)")
    _data_dir_flag(sweep)
    sweep.set_defaults(func=cmd_sweep_files)

    if importlib.util.find_spec("db.io_cli") is not None:
        importlib.import_module("db.io_cli").register(sub)
