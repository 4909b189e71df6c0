"""Fixtures shared across the test packages: a temp data dir with a migrated database.

The db, webapp and worker suites run every test that uses ``settings`` twice: on a SQLite file
and on a fresh database of a real PostgreSQL server that the suite starts itself
(:mod:`tests.pg_server`; ids ``[sqlite]`` / ``[postgresql]``). The other packages use SQLite.
Where the server cannot start (no binaries, no ``postgres`` user) the PostgreSQL half is
skipped with the reason; ``-m "not postgresql"`` leaves it out on purpose.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db.database import open_database, upgrade_database
from db.settings import Settings
from tests.pg_server import PostgresUnavailable, start_postgres

TESTS = Path(__file__).resolve().parent
BOTH_DATABASES = ("db", "webapp", "worker")
"""Test packages whose database tests run on SQLite and on PostgreSQL."""
TEMPLATE = "facet_template"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_backend" not in metafunc.fixturenames:
        return
    package = Path(str(metafunc.definition.path)).resolve().relative_to(TESTS).parts[0]
    if package in BOTH_DATABASES:
        metafunc.parametrize("db_backend", ["sqlite", pytest.param(
            "postgresql", marks=pytest.mark.postgresql)], indirect=True)


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole run, with a migrated template database."""
    try:
        server = start_postgres()
    except PostgresUnavailable as err:
        pytest.skip(f"PostgreSQL server cannot start here: {err}")
    try:
        upgrade_database(server.create_database(TEMPLATE))
        yield server
    finally:
        server.stop()


@pytest.fixture
def db_backend(request) -> str:
    """``sqlite`` or ``postgresql`` (parametrised in the db, webapp and worker packages)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(db_backend: str, request):
    """``None`` for SQLite (the data dir's file), else the URL of a fresh migrated PostgreSQL
    database, dropped after the test."""
    if db_backend == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name, template=TEMPLATE)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    """Settings for a fresh data dir under ``tmp_path`` (SQLite queue; the database of
    :func:`database_url`)."""
    return Settings.resolve(data_dir=tmp_path / "data", database_url=database_url, env={})


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    """A session factory over the migrated database of :func:`settings`."""
    factory = open_database(settings)
    yield factory
    factory.kw["bind"].dispose()
