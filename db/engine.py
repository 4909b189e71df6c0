"""Engine and session setup.

SQLite gets WAL, foreign keys and a busy timeout on every connection. PostgreSQL goes through
psycopg 3 (a plain ``postgresql://`` URL means it) with a connection pool sized for one web
process or worker: :data:`PG_POOL_SIZE` kept open, :data:`PG_MAX_OVERFLOW` more under bursts,
and a request that finds all of them busy waits up to :data:`PG_POOL_TIMEOUT_S`.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 15_000
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20
PG_POOL_TIMEOUT_S = 30
PG_STATEMENT_TIMEOUT_MS = 60_000
"""A statement (or a wait for a row lock) that takes longer is cancelled with an error."""


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite connections are configured by :func:`_sqlite_pragmas`."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, pool_size=PG_POOL_SIZE,
                             max_overflow=PG_MAX_OVERFLOW, pool_timeout=PG_POOL_TIMEOUT_S,
                             connect_args={"options": f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS}"})
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
