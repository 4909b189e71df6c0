"""Engine and session setup.

SQLite gets WAL, foreign keys and a busy timeout on every connection. PostgreSQL goes through
psycopg 3 (a plain ``postgresql://`` URL means it) with a connection pool sized for one web
process or worker: :data:`PG_POOL_SIZE` kept open, :data:`PG_MAX_OVERFLOW` more under bursts,
and a request that finds all of them busy waits up to :data:`PG_POOL_TIMEOUT_S`.

A statement waits for another connection's lock (SQLite's write lock, a PostgreSQL row or
table lock) at most ``busy_timeout_ms`` (default :data:`BUSY_TIMEOUT_MS`; the commands take
``FACET_DB_BUSY_TIMEOUT_MS`` through :class:`db.settings.Settings`), then fails.
:func:`database_fault` tells such failures, and a database that cannot be reached, from bugs:
the web process answers them 503 (``webapp/server.py``).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 15_000
"""Default longest wait for another connection's lock (SQLite busy timeout, PostgreSQL
``lock_timeout``)."""
PG_POOL_SIZE = 10
PG_MAX_OVERFLOW = 20
PG_POOL_TIMEOUT_S = 30
PG_STATEMENT_TIMEOUT_MS = 60_000
"""A statement that takes longer is cancelled with an error (a wait for a lock ends sooner,
at the busy timeout: ``lock_timeout``)."""


def _sqlite_pragmas(busy_timeout_ms: int, dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``; SQLite connections are configured by :func:`_sqlite_pragmas`.
    ``busy_timeout_ms``: how long a statement waits for another connection's lock."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000,
                                                  "check_same_thread": False})
        event.listen(engine, "connect", partial(_sqlite_pragmas, busy_timeout_ms))
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("postgresql"):
        options = (f"-c statement_timeout={PG_STATEMENT_TIMEOUT_MS} "
                   f"-c lock_timeout={int(busy_timeout_ms)}")
        return create_engine(url, pool_pre_ping=True, pool_size=PG_POOL_SIZE,
                             max_overflow=PG_MAX_OVERFLOW, pool_timeout=PG_POOL_TIMEOUT_S,
                             connect_args={"options": options})
    return create_engine(url, pool_pre_ping=True)


@dataclass(frozen=True)
class DatabaseFault:
    """A database error that is not the request's fault and may pass: ``busy`` (a lock held
    longer than the busy timeout, a statement timeout, a deadlock, every pooled connection in
    use; the transaction was rolled back) or ``unavailable`` (cannot connect, connection lost,
    server shutting down or starting, I/O error, disk full). ``why``: the driver's first line."""

    kind: str
    why: str


# SQLite primary result codes (``sqlite3.Error.sqlite_errorcode & 0xff``)
_SQLITE_BUSY = {5, 6}                   # SQLITE_BUSY, SQLITE_LOCKED
_SQLITE_UNAVAILABLE = {10, 13, 14, 15}  # SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL
# PostgreSQL SQLSTATEs: lock_not_available (lock_timeout), query_canceled (statement_timeout),
# serialization_failure, deadlock_detected
_PG_BUSY = {"55P03", "57014", "40001", "40P01"}
# admin_shutdown, crash_shutdown, cannot_connect_now; classes 08 (connection exception) and
# 53 (insufficient resources: too many connections, disk full, out of memory)
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03"}
_PG_UNAVAILABLE_CLASSES = {"08", "53"}


def _first_line(err: BaseException | None) -> str:
    text = str(err).strip() if err is not None else ""
    return text.splitlines()[0].strip() if text else type(err).__name__


def database_fault(err: BaseException) -> DatabaseFault | None:
    """What ``err`` (raised by SQLAlchemy) says about the database, when it is busy or cannot
    be reached; ``None`` for anything else (a bug, a constraint violation, bad SQL)."""
    if isinstance(err, PoolTimeout):
        return DatabaseFault("busy", "every connection of this process's pool is in use")
    if not isinstance(err, DBAPIError):
        return None
    orig = err.orig
    why = _first_line(orig)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        if code & 0xFF in _SQLITE_BUSY:
            return DatabaseFault("busy", why)
        if code & 0xFF in _SQLITE_UNAVAILABLE:
            return DatabaseFault("unavailable", why)
        return None
    if err.connection_invalidated:
        return DatabaseFault("unavailable", why)
    state = getattr(orig, "sqlstate", None)
    if state in _PG_BUSY:
        return DatabaseFault("busy", why)
    if state in _PG_UNAVAILABLE or (state and state[:2] in _PG_UNAVAILABLE_CLASSES):
        return DatabaseFault("unavailable", why)
    if state is None and isinstance(err, OperationalError):
        return DatabaseFault("unavailable", why)  # no answer from the server: refused, closed
    return None


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
