"""A throwaway PostgreSQL server for the tests and benches.

:func:`start_postgres` runs Debian's (or any) PostgreSQL binaries — ``initdb`` then ``pg_ctl
start`` — on a new temp directory with its own port and Unix socket, and :meth:`LocalPostgres.stop`
removes it all. ``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the
``postgres`` user (``runuser``), which then owns the directory. The server trusts local
connections from its superuser ``facet`` and runs without fsync: test data need no durability.

Each test gets its own database, copied from a migrated template (:meth:`LocalPostgres.fresh`),
which takes a fraction of the time of migrating it again. :meth:`LocalPostgres.restart` stops
and starts the server on the same port (the fault tests, ``tests/webapp/test_faults.py``).
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.webapp.live import free_port

SUPERUSER = "facet"
START_TIMEOUT_S = 60


class PostgresUnavailable(RuntimeError):
    """The server cannot be started here; the message says why (missing binaries, no user)."""


def find_bin_dir(env: dict[str, str] | None = None) -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``FACET_PG_BIN``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian), or ``PATH``."""
    env = os.environ if env is None else env
    candidates = [env["FACET_PG_BIN"]] if env.get("FACET_PG_BIN") else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                         reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for directory in candidates:
        if (Path(directory) / "initdb").is_file() and (Path(directory) / "pg_ctl").is_file():
            return Path(directory)
    raise PostgresUnavailable("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install "
                              "postgresql, or set FACET_PG_BIN to their directory")


@dataclass
class LocalPostgres:
    """A running server: ``root`` holds its data, log and socket; it listens on ``port``."""

    root: Path
    port: int
    bin_dir: Path
    as_user: str | None
    """``postgres`` when the server runs as that user (we are root), else ``None``."""
    options: str = ""
    """The server's command-line options (``pg_ctl -o``): port, socket, no fsync."""

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run one statement outside a transaction (CREATE/DROP DATABASE) on ``postgres``."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (a copy of ``template`` when given); its URL."""
        copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        self.admin(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing whatever connections are still open on it."""
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        return _run(self.as_user, [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"),
                                   *args])

    def _start_argv(self) -> list[str]:
        return [str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), "-l",
                str(self.root / "log"), "-w", "-t", str(START_TIMEOUT_S), "-o", self.options,
                "start"]

    def restart(self, mode: str = "fast", down_s: float = 0.0) -> None:
        """Stop the server (``pg_ctl -m fast``: sessions are ended, or ``immediate``: a crash,
        recovered from the WAL at the next start), keep it down ``down_s`` seconds, and start
        it again on the same port and data; returns once it accepts connections."""
        stopped = self._pg_ctl("-m", mode, "-w", "stop")
        if stopped.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed: {stopped.stderr or stopped.stdout}")
        time.sleep(down_s)
        started = _run(self.as_user, self._start_argv())
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {started.stderr or started.stdout}\n"
                               + (self.root / "log").read_text(errors="replace")[-2000:])

    def stop(self) -> None:
        """Stop the server at once and delete its directory."""
        self._pg_ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _run(as_user: str | None, argv: list[str]) -> subprocess.CompletedProcess:
    if as_user is not None:
        argv = ["runuser", "-u", as_user, "--", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S)


def start_postgres(env: dict[str, str] | None = None) -> LocalPostgres:
    """Initialise and start a server in a new temp directory; :class:`PostgresUnavailable`
    (with the server's own words) when that cannot be done here."""
    bin_dir = find_bin_dir(env)
    as_user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no 'postgres' user to run "
                                      "the server as") from None
        as_user = "postgres"
    root = Path(tempfile.mkdtemp(prefix="facet-pg-"))
    if as_user is not None:
        shutil.chown(root, user=as_user)
    port = free_port()
    server = LocalPostgres(root=root, port=port, bin_dir=bin_dir, as_user=as_user, options=(
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"))
    steps = (
        [str(bin_dir / "initdb"), "-D", str(root / "data"), "-A", "trust", "-U", SUPERUSER,
         "-E", "UTF8", "--no-sync"],
        server._start_argv(),
    )
    for argv in steps:
        done = _run(as_user, argv)
        if done.returncode != 0:
            log = (root / "log").read_text(errors="replace")[-2000:] if (root / "log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
            raise PostgresUnavailable(f"{Path(argv[0]).name} failed ({done.returncode}): "
                                      f"{(done.stderr or done.stdout).strip()[-1500:]}\n{log}")
    return server
