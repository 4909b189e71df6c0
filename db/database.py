"""Open the database: create the data dir, migrate to the newest schema, hand out sessions.

Every command and the web process call :func:`open_database` first, so a fresh or older
database is always upgraded before use.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from db.engine import make_engine, make_session_factory
from db.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config for ``url`` (passed to ``migrations/env.py`` as an attribute).

    Built in code, so the app does not depend on ``alembic.ini`` (that is for the CLI).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["url"] = url
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def head_revision() -> str:
    """The newest migration id in ``migrations/versions``."""
    head = _scripts().get_current_head()
    if head is None:
        raise RuntimeError("no migrations found in migrations/versions")
    return head


def current_revision(url: str) -> str | None:
    """The migration id the database at ``url`` is at; ``None`` for an empty database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _check_unversioned(url: str) -> None:
    """Refuse a database that has tables but no migration history (not made by Facet)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    if tables and "alembic_version" not in tables:
        raise FacetError(f"database {engine.url.render_as_string(hide_password=True)} has tables "
                         f"({', '.join(sorted(tables)[:3])}, ...) but no Facet migration history; "
                         "use an empty database or one created by Facet")


def upgrade_database(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision`` (default: the newest)."""
    _check_unversioned(url)
    command.upgrade(alembic_config(url), revision)


def downgrade_database(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` empties it)."""
    command.downgrade(alembic_config(url), revision)


@contextmanager
def migration_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock file in the data dir, so that processes starting together
    (web server, worker, CLI) migrate one after the other instead of racing."""
    import fcntl  # POSIX; Facet runs on Linux and macOS

    with open(data_dir / ".migrate.lock", "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Create the data dir, upgrade the database to the newest schema, return a session factory."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.database_url
    head = head_revision()
    if current_revision(url) != head:
        with migration_lock(settings.data_dir):
            current = current_revision(url)  # another process may have migrated meanwhile
            known = {script.revision for script in _scripts().walk_revisions()}
            if current is not None and current not in known:
                raise FacetError(f"database is at migration {current!r}, which this version "
                                 "of Facet does not know (made by a newer version?)")
            if current != head:
                upgrade_database(url)
    return make_session_factory(make_engine(url, settings.db_busy_timeout_ms))
