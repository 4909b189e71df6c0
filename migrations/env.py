"""Alembic environment for Facet.

The URL comes from, in order: ``config.attributes["url"]`` (set by
``db.database.upgrade_database``), ``alembic -x url=...``, ``FACET_DATABASE_URL``, the
``sqlalchemy.url`` option, and finally the default data dir (``Settings.resolve()``).

Migrations run with SQLite foreign keys OFF: a batch rebuild of a parent table with
``PRAGMA foreign_keys=ON`` cascade-deletes every child row. The pragma is a no-op inside a
transaction, so it is set and committed before Alembic begins its own.
"""
from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from db.engine import make_engine
from db.models import Base
from db.settings import Settings

config = context.config
if config.config_file_name is not None and "url" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)  # the Alembic CLI
target_metadata = Base.metadata


def _url() -> str:
    return (config.attributes.get("url")
            or context.get_x_argument(as_dictionary=True).get("url")
            or os.environ.get("FACET_DATABASE_URL")
            or config.get_main_option("sqlalchemy.url")
            or _default_url())


def _default_url() -> str:
    settings = Settings.resolve()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings.database_url


def _configure_kwargs() -> dict:
    return {"target_metadata": target_metadata, "render_as_batch": True,
            "compare_type": True}


def run_migrations_offline() -> None:
    """Emit SQL to stdout (``alembic upgrade head --sql``)."""
    context.configure(url=_url(), literal_binds=True,
                      dialect_opts={"paramstyle": "named"}, **_configure_kwargs())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate a live database through the app's own engine (WAL, busy timeout)."""
    url = _url()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()
            context.configure(connection=connection, **_configure_kwargs())
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
