"""Faults of real processes, and what they cost: the web server SIGKILLed while annotators save,
the database locked past the busy timeout, PostgreSQL restarted under load, a database that
cannot be reached. (docs/FAULTS.md tabulates them.)

The killed web server is a separate process running the ``serve --no-worker`` command, with
accounts made by ``users add`` (both as ``app.main(argv)`` in processes forked from one that
imported torch and Gradio once: :class:`Forker`). The locked database and the restarted
PostgreSQL server are real too (another connection's lock, ``pg_ctl stop`` / ``start``),
with the studio served by uvicorn in this process.

Each test checks what a client sees — a 503 with ``Retry-After`` and a JSON ``detail`` that
says busy or unavailable and to try again, never a 500 — and that nothing was lost: every save
answered 2xx is in the database bit-exact at its revision number, every 409 kept its draft,
every stored label map is one a client sent (nothing half-written), revision numbers run 1..n
per image, and the database passes its integrity checks (:func:`integrity_problems`).
"""
from __future__ import annotations

import io
import json
import logging
import os
import select as io_select
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload

from core.errors import FacetError
from core.imageio import decode_label_png, encode_label_png
from db.database import open_database
from db.engine import database_fault, make_engine, session_scope
from db.images import add_image
from db.models import Base, Image, Revision
from db.settings import Settings
from tests.app_cli import REPO, cli_env
from tests.conftest import TEMPLATE
from tests.webapp.helpers import auth, make_studio
from tests.webapp.live import LiveServer, free_port
from webapp.db_faults import DB_BUSY_RETRY_S, DB_UNAVAILABLE_RETRY_S
from webapp.server import build_app

pytestmark = pytest.mark.slow
LEAD = ("lead", "lead-pass-1")
ANN = ("ann1", "ann1-pass-1")
SIZE = 48
"""Side of the test images and their label maps, in pixels."""
NUM_CLASSES = 19


# ---------------------------------------------------------------------------------------------
# Saving clients and what they were told


@dataclass
class Attempt:
    """One PUT of a label map: what was sent and what came back (``status`` None: no answer,
    the connection broke)."""

    image_id: int
    base: int | None
    user: str
    pixels: np.ndarray
    status: int | None = None
    revision: int | None = None
    draft_id: int | None = None
    detail: str = ""
    retry_after: str | None = None


@dataclass
class Tally:
    attempts: list[Attempt] = field(default_factory=list)  # appended under the GIL
    errors: list[str] = field(default_factory=list)

    def acked(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is not None and 200 <= a.status < 300]


def _photo(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _paint(rng: np.random.Generator, label: np.ndarray, klass: int) -> np.ndarray:
    """``label`` with a random rectangle of ``klass`` that changes it (a new array: saving
    the same map again from its own revision is a repeat, answered with that revision)."""
    for tries in range(1000):
        out = label.copy()
        y, x = (int(v) for v in rng.integers(0, SIZE - 4, 2))
        h, w = (int(v) for v in rng.integers(3, SIZE // 2, 2))
        out[y:y + h, x:x + w] = klass if tries < 20 else (klass + 1) % NUM_CLASSES
        if not np.array_equal(out, label):
            return out
    raise AssertionError("no change painted")


def _record(attempt: Attempt, answer: httpx.Response) -> None:
    attempt.status = answer.status_code
    attempt.retry_after = answer.headers.get("Retry-After")
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
    attempt.detail = str(body.get("detail", answer.text[:300]))
    if answer.status_code == 200:
        attempt.revision = body["revision"]
    elif answer.status_code == 409:
        attempt.draft_id = body["kept_draft_id"]


def _annotator(base_url: str, who: tuple[str, str], klass: int, ids: list[int], seed: int,
               stop: threading.Event, tally: Tally) -> None:
    """Open a random image (its ETag is the base), paint, save with If-Match; until ``stop``
    or the server is gone."""
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base_url, auth=who, timeout=30) as client:
        while not stop.is_set():
            image_id = ids[int(rng.integers(len(ids)))]
            try:
                got = client.get(f"/images/{image_id}/annotation")
            except httpx.TransportError:
                return
            if got.status_code == 200:
                base, headers = int(got.headers["ETag"].strip('"')), {"If-Match": got.headers["ETag"]}
                label = decode_label_png(got.content, NUM_CLASSES)
            elif got.status_code == 404:
                base, headers, label = None, {}, np.zeros((SIZE, SIZE), np.uint8)
            else:
                tally.errors.append(f"GET {got.status_code}: {got.text[:200]}")
                return
            attempt = Attempt(image_id, base, who[0], _paint(rng, label, klass))
            tally.attempts.append(attempt)
            try:
                answer = client.put(f"/images/{image_id}/annotation", headers=headers,
                                    content=encode_label_png(attempt.pixels))
            except httpx.TransportError:
                return  # killed mid-request: this save's outcome is unknown to the client
            _record(attempt, answer)
            if answer.status_code not in (200, 409):
                tally.errors.append(f"PUT {answer.status_code}: {answer.text[:200]}")
                return


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The database afterwards


@dataclass
class Row:
    id: int
    image_id: int
    revision: int | None
    parent_id: int | None
    author: str | None
    pixels: np.ndarray


def _rows(settings: Settings) -> tuple[dict[int, tuple[int, int]], list[Row]]:
    """Label sizes by image id, and every revision row decoded."""
    sessions = open_database(settings)
    try:
        with session_scope(sessions) as s:
            sizes = {i.id: (i.label_width, i.label_height) for i in s.scalars(select(Image))}
            rows = [Row(r.id, r.image_id, r.revision, r.parent_id,
                        r.author.name if r.author else None,
                        decode_label_png(r.label_png, NUM_CLASSES, sizes[r.image_id]))
                    for r in s.scalars(select(Revision).options(selectinload(Revision.author))
                                       .order_by(Revision.id))]
    finally:
        sessions.kw["bind"].dispose()
    return sizes, rows


def lost_saves(settings: Settings, tally: Tally) -> list[str]:
    """What the database lacks of what clients were told, and what it holds that no client
    sent: every 2xx at its image and revision number with the exact pixels, every 409's kept
    draft, and every stored map equal to one a client sent to that image."""
    _sizes, rows = _rows(settings)
    main = {(r.image_id, r.revision): r for r in rows if r.revision is not None}
    by_id = {r.id: r for r in rows}
    problems = []
    for a in tally.attempts:
        if a.status == 200:
            row = main.get((a.image_id, a.revision))
            if row is None or not np.array_equal(row.pixels, a.pixels):
                problems.append(f"acknowledged save of image {a.image_id} as revision "
                                f"{a.revision} is {'missing' if row is None else 'different'}")
        elif a.status == 409:
            row = by_id.get(a.draft_id)
            if row is None or row.revision is not None or not np.array_equal(row.pixels, a.pixels):
                problems.append(f"409's kept draft {a.draft_id} of image {a.image_id} is lost")
    sent: dict[int, list[np.ndarray]] = {}
    for a in tally.attempts:
        sent.setdefault(a.image_id, []).append(a.pixels)
    for r in rows:
        if not any(np.array_equal(r.pixels, p) for p in sent.get(r.image_id, [])):
            problems.append(f"revision row {r.id} of image {r.image_id} holds a map no client sent")
    return problems


def integrity_problems(settings: Settings) -> list[str]:
    """Checks that mean something for a database a fault hit; empty when all hold.

    Both databases: every foreign key of the schema points at a row (SQLite can be left with
    orphans when foreign keys were off; PostgreSQL enforces them, a cheap confirmation), each
    image's main-line revision numbers run 1..n (no duplicate, no gap: no save overwrote or
    skipped another), each revision's parent is a revision of the same image, and every
    stored label map decodes at its image's label size (no torn blob). SQLite: ``PRAGMA
    integrity_check`` is ``ok`` and ``PRAGMA foreign_key_check`` is empty. PostgreSQL:
    ``amcheck`` verifies every B-tree index against its table (``bt_index_check`` with
    ``heapallindexed``), e.g. after the crash recovery of an immediate stop."""
    problems: list[str] = []
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                for fk in table.foreign_key_constraints:
                    (col,), (ref,) = fk.column_keys, [e.column for e in fk.elements]
                    orphans = conn.scalar(text(
                        f"SELECT count(*) FROM {table.name} c WHERE c.{col} IS NOT NULL AND NOT "
                        f"EXISTS (SELECT 1 FROM {ref.table.name} p WHERE p.{ref.name} = c.{col})"))
                    if orphans:
                        problems.append(f"{orphans} rows of {table.name}.{col} point nowhere")
            if engine.dialect.name == "sqlite":
                check = [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
                if check != ["ok"]:
                    problems.append(f"PRAGMA integrity_check: {check[:5]}")
                fks = list(conn.exec_driver_sql("PRAGMA foreign_key_check"))
                if fks:
                    problems.append(f"PRAGMA foreign_key_check: {fks[:5]}")
            else:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                indexes = conn.execute(text(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = "
                    "c.relnamespace WHERE am.amname = 'btree' AND n.nspname = 'public'")).scalars().all()
                assert indexes, "no indexes found to check"
                for name in indexes:
                    try:
                        conn.execute(text("SELECT bt_index_check(CAST(:n AS regclass), true)"),
                                     {"n": name})
                    except DBAPIError as err:  # amcheck raises on a corrupt index
                        problems.append(f"amcheck {name}: {str(err).splitlines()[0]}")
                        conn.rollback()
            conn.rollback()
    finally:
        engine.dispose()
    _sizes, rows = _rows(settings)  # decoding checks every blob at its label size
    numbers: dict[int, list[int]] = {}
    image_of = {r.id: r.image_id for r in rows}
    for r in rows:
        if r.revision is not None:
            numbers.setdefault(r.image_id, []).append(r.revision)
        if r.parent_id is not None and image_of.get(r.parent_id) != r.image_id:
            problems.append(f"revision row {r.id}'s parent {r.parent_id} is not of its image")
    for image_id, got in numbers.items():
        if sorted(got) != list(range(1, len(got) + 1)):
            problems.append(f"image {image_id}'s revision numbers are {sorted(got)}, not 1..n")
    return problems


def _latest(rows: list[Row], image_id: int) -> Row | None:
    main = [r for r in rows if r.image_id == image_id and r.revision is not None]
    return max(main, key=lambda r: r.revision) if main else None


# ---------------------------------------------------------------------------------------------
# 1. The web server SIGKILLed while 8 annotators save


FORKER = r"""
import io, json, os, signal, sys
import app, db.cli, webapp.server, webapp.cli, worker.client, worker.options, model.devices
print("ready", flush=True)
for line in sys.stdin:
    order = json.loads(line)
    if "wait" in order:
        _pid, status = os.waitpid(order["wait"], 0)
        print(os.waitstatus_to_exitcode(status), flush=True)
        continue
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            sys.stdin = io.StringIO(order.get("stdin") or "")
            os.environ.clear()
            os.environ.update(order["env"])
            code = app.main(order["argv"])
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


class Forker:
    """Runs ``app.py`` commands as separate processes, forked from one that has already
    imported what ``serve`` needs (torch, Gradio): each command is ``app.main(argv)`` in its
    own process, with its own environment and log, as ``python app.py ARGV`` runs it, but it
    starts in a second or two instead of re-importing for tens of seconds on a busy machine."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", FORKER], cwd=REPO, text=True,
                                     env={**cli_env(), "OMP_NUM_THREADS": "1"},
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = False

    def _answer(self, timeout: float) -> str:
        if not io_select.select([self.proc.stdout], [], [], timeout)[0]:
            raise AssertionError(f"the forker did not answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the forker exited ({self.proc.poll()})")
        return line.strip()

    def run(self, argv: list[str], settings: Settings, log, stdin: str | None = None) -> int:
        """Start ``app.py ARGV`` on ``settings``' data dir and database; its pid."""
        if not self.ready:
            assert self._answer(300) == "ready"
            self.ready = True
        order = {"argv": argv, "env": {**cli_env(settings), "OMP_NUM_THREADS": "1"},
                 "log": str(log), "stdin": stdin}
        self.proc.stdin.write(json.dumps(order) + "\n")
        self.proc.stdin.flush()
        return int(self._answer(30))

    def wait(self, pid: int, timeout: float = 60) -> int:
        """Reap ``pid``; its exit code (minus the signal number when a signal ended it)."""
        self.proc.stdin.write(json.dumps({"wait": pid}) + "\n")
        self.proc.stdin.flush()
        return int(self._answer(timeout))

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def forker():
    f = Forker()
    yield f
    f.close()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited child waiting to be reaped does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_healthy(url: str, pid: int, log, timeout: float = 120) -> None:
    def healthy() -> bool:
        try:
            return httpx.get(url + "/api/health", auth=LEAD, timeout=5).status_code == 200
        except httpx.TransportError:
            if not _alive(pid):
                raise AssertionError("serve exited:\n" + log.read_text(errors="replace")[-3000:]) \
                    from None
            return False
    _wait(healthy, timeout, "serve to answer /api/health")


def _stop(forker: Forker, pid: int | None) -> None:
    if pid is not None and _alive(pid):
        os.kill(pid, signal.SIGTERM)
        try:
            forker.wait(pid, 30)
        except AssertionError:
            os.kill(pid, signal.SIGKILL)
            forker.wait(pid, 30)


def test_a_sigkilled_web_server_loses_no_acknowledged_save(settings, forker):
    settings.data_dir.mkdir(parents=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--no-worker", "--no-prior", "--port", str(port)]
    logs = settings.data_dir
    first = second = None
    tally, stop = Tally(), threading.Event()
    try:
        for (name, password), role in [(LEAD, "admin"), (ANN, "annotator")]:
            pid = forker.run(["users", "add", name, "--role", role], settings,
                             logs / "users.log", stdin=password + "\n")
            assert forker.wait(pid) == 0, (logs / "users.log").read_text()
        first = forker.run(serve, settings, logs / "serve-1.log")
        _wait_healthy(url, first, logs / "serve-1.log")
        with httpx.Client(base_url=url + "/api", auth=LEAD, timeout=30) as lead:
            ids = []
            for seed in range(4):
                r = lead.post("/images", files={"file": (f"f{seed}.png", _photo(seed), "image/png")})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
        # 8 annotators on 4 images: conflicts (409, kept drafts) happen too
        threads = [threading.Thread(target=_annotator, args=(
            url + "/api", LEAD if i % 2 else ANN, 1 + i, ids, i, stop, tally)) for i in range(8)]
        for t in threads:
            t.start()
        _wait(lambda: len(tally.acked()) >= 16 or tally.errors, 60, "16 acknowledged saves")
        os.kill(first, signal.SIGKILL)
        assert forker.wait(first) == -signal.SIGKILL
        first = None
        stop.set()
        for t in threads:
            t.join(30)
        assert not tally.errors, tally.errors
        unanswered = [a for a in tally.attempts if a.status is None]
        assert unanswered, "the kill should cut saves off mid-request"
        # the database as the kill left it
        assert integrity_problems(settings) == []

        second = forker.run(serve, settings, logs / "serve-2.log")  # same data, database, port
        _wait_healthy(url, second, logs / "serve-2.log")
        assert lost_saves(settings, tally) == []
        assert integrity_problems(settings) == []
        _sizes, rows = _rows(settings)
        stored = sum(any(r.image_id == a.image_id and np.array_equal(r.pixels, a.pixels)
                         for r in rows) for a in unanswered)
        print(f"\n[{settings.database_url.split(':')[0]}] saves sent {len(tally.attempts)}, "
              f"acknowledged {len(tally.acked())}, "
              f"409 {sum(a.status == 409 for a in tally.attempts)}, cut off by the kill "
              f"{len(unanswered)} (of which stored: {stored})")

        # whoever saves a cut-off map again, from the same base, loses nothing: the same
        # revision when it was stored and is still the newest, else a new one or a kept draft
        passwords = dict([LEAD, ANN])
        for a in unanswered:
            again = Attempt(a.image_id, a.base, a.user, a.pixels)
            _record(again, httpx.put(
                f"{url}/api/images/{a.image_id}/annotation", auth=(a.user, passwords[a.user]),
                content=encode_label_png(a.pixels), timeout=30,
                headers={"If-Match": f'"{a.base}"'} if a.base else {}))
            assert again.status in (200, 409), again.detail
            tally.attempts.append(again)
        assert lost_saves(settings, tally) == []

        # the restarted server shows the newest revisions and takes saves again
        _sizes, rows = _rows(settings)
        rng = np.random.default_rng(99)
        with httpx.Client(base_url=url + "/api", auth=ANN, timeout=30) as annotator:
            for image_id in ids:
                latest = _latest(rows, image_id)
                got = annotator.get(f"/images/{image_id}/annotation")
                if latest is None:
                    assert got.status_code == 404
                    headers, label = {}, np.zeros((SIZE, SIZE), np.uint8)
                else:
                    assert got.status_code == 200 and got.headers["ETag"] == f'"{latest.revision}"'
                    label = decode_label_png(got.content, NUM_CLASSES)
                    assert np.array_equal(label, latest.pixels)
                    headers = {"If-Match": got.headers["ETag"]}
                new = _paint(rng, label, 18)
                r = annotator.put(f"/images/{image_id}/annotation", headers=headers,
                                  content=encode_label_png(new))
                assert r.status_code == 200, r.text
                assert r.json()["revision"] == (latest.revision if latest else 0) + 1
                tally.attempts.append(Attempt(image_id, latest.revision if latest else None,
                                              ANN[0], new, 200, r.json()["revision"]))
        assert lost_saves(settings, tally) == []
    finally:
        stop.set()
        _stop(forker, first)
        _stop(forker, second)


# ---------------------------------------------------------------------------------------------
# 2. The database locked past the busy timeout


@contextmanager
def _lock_held(settings: Settings, image_id: int):
    """Another connection holding what a save of ``image_id`` needs: SQLite's write lock
    (``BEGIN EXCLUSIVE``), PostgreSQL's row lock on the image (``SELECT … FOR UPDATE``)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.split("sqlite:///", 1)[1], isolation_level=None, timeout=5)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            conn.execute("SELECT id FROM images WHERE id = %s FOR UPDATE", (image_id,))
            try:
                yield
            finally:
                conn.rollback()


def test_a_database_locked_past_the_busy_timeout_answers_503_and_the_next_save_succeeds(settings):
    with pytest.raises(FacetError, match="FACET_DB_BUSY_TIMEOUT_MS must be a whole number"):
        Settings.resolve(data_dir=settings.data_dir, env={"FACET_DB_BUSY_TIMEOUT_MS": "2s"})
    # the busy timeout comes from the environment, read where the process starts
    quick = Settings.resolve(data_dir=settings.data_dir, database_url=settings.database_url,
                             queue_url=settings.queue_url, env={"FACET_DB_BUSY_TIMEOUT_MS": "300"})
    assert quick.db_busy_timeout_ms == 300
    studio = make_studio(quick)
    with studio.session() as s:
        image_id = add_image(s, quick, _photo(7), "f.png").image.id
    rng = np.random.default_rng(3)
    first = _paint(rng, np.zeros((SIZE, SIZE), np.uint8), 3)
    second = _paint(rng, first, 5)
    try:
        with LiveServer(build_app(studio)) as url, \
                httpx.Client(base_url=url + "/api", auth=auth("ann"), timeout=30) as client:
            put = lambda pixels, base: client.put(
                f"/images/{image_id}/annotation", content=encode_label_png(pixels),
                headers={"If-Match": f'"{base}"'} if base else {})
            assert put(first, None).json()["revision"] == 1
            with _lock_held(quick, image_id):
                start = time.monotonic()
                r = put(second, 1)
                waited = time.monotonic() - start
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == str(DB_BUSY_RETRY_S)
                detail = r.json()["detail"]
                assert "database is busy" in detail and "nothing was changed" in detail
                assert "Try again in" in detail and "0.3 s" in detail
                assert 0.25 < waited < 5, waited  # the configured 0.3 s, not the default 15 s
                # reads go on while the lock is held
                got = client.get(f"/images/{image_id}/annotation")
                assert got.status_code == 200 and got.headers["ETag"] == '"1"'
            _sizes, rows = _rows(quick)  # nothing half-written: only revision 1
            assert [(r.revision, r.author) for r in rows] == [(1, "ann")]
            assert np.array_equal(rows[0].pixels, first)
            r = put(second, 1)  # the lock is gone: the same save goes through
            assert r.status_code == 200 and r.json()["revision"] == 2, r.text
    finally:
        studio.sessions.kw["bind"].dispose()
    _sizes, rows = _rows(quick)
    assert [(r.revision, r.author) for r in rows] == [(1, "ann"), (2, "ann")]
    assert np.array_equal(rows[1].pixels, second)
    assert integrity_problems(quick) == []


# ---------------------------------------------------------------------------------------------
# 3. PostgreSQL restarted under load


@pytest.fixture
def durable_pg_settings(tmp_path, postgres_server):
    """A fresh PostgreSQL database with ``synchronous_commit`` on, as in production (the test
    server turns it off; an immediate stop would then drop commits it already acknowledged)."""
    name = f"faults_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name, template=TEMPLATE)
    postgres_server.admin(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    try:
        yield Settings.resolve(data_dir=tmp_path / "data", database_url=url, env={})
    finally:
        postgres_server.drop_database(name)


def _steady_saver(base_url: str, image_id: int, klass: int, seed: int, stop: threading.Event,
                  tally: Tally, mine: list[Attempt]) -> None:
    """Save one image over and over from the revision it last saved; an answer that is not a
    200 (503 while the database is away) is retried as the very same request."""
    rng = np.random.default_rng(seed)
    base, label = None, np.zeros((SIZE, SIZE), np.uint8)
    with httpx.Client(base_url=base_url, auth=auth("ann"), timeout=30) as client:
        while not stop.is_set():
            label = _paint(rng, label, klass)
            while not stop.is_set():
                attempt = Attempt(image_id, base, "ann", label)
                tally.attempts.append(attempt)
                mine.append(attempt)
                try:
                    answer = client.put(f"/images/{image_id}/annotation",
                                        content=encode_label_png(label),
                                        headers={"If-Match": f'"{base}"'} if base else {})
                except httpx.TransportError as err:
                    tally.errors.append(f"PUT: {err!r}")
                    return
                _record(attempt, answer)
                if answer.status_code == 200:
                    base = attempt.revision
                    break
                if answer.status_code != 503:
                    tally.errors.append(f"PUT {answer.status_code}: {answer.text[:200]}")
                    return
                time.sleep(0.1)


@pytest.mark.postgresql
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restarted_under_load_answers_503_then_saves_again(
        durable_pg_settings, postgres_server, mode):
    settings = durable_pg_settings
    studio = make_studio(settings)
    with studio.session() as s:
        ids = [add_image(s, settings, _photo(20 + i), f"f{i}.png").image.id for i in range(4)]
    tally, stop = Tally(), threading.Event()
    per_image: dict[int, list[Attempt]] = {image_id: [] for image_id in ids}
    try:
        with LiveServer(build_app(studio)) as url:
            threads = [threading.Thread(target=_steady_saver, args=(
                url + "/api", image_id, 1 + i, i, stop, tally, per_image[image_id]))
                for i, image_id in enumerate(ids)]
            for t in threads:
                t.start()
            _wait(lambda: len(tally.acked()) >= 8 or tally.errors, 60, "8 saves before the restart")
            postgres_server.restart(mode, down_s=1.0)
            back = len(tally.attempts)
            _wait(lambda: sum(a.status == 200 for a in tally.attempts[back:]) >= 8 or tally.errors,
                  60, "8 saves after the restart")
            stop.set()
            for t in threads:
                t.join(30)
    finally:
        stop.set()
        studio.sessions.kw["bind"].dispose()
    assert not tally.errors, tally.errors
    refused = [a for a in tally.attempts if a.status == 503]
    assert refused, "saves during the outage should have been refused"
    for a in refused:
        assert a.retry_after == str(DB_UNAVAILABLE_RETRY_S), a
        assert "database is unavailable" in a.detail and "Try again in" in a.detail, a.detail
    assert {a.status for a in tally.attempts} <= {200, 503, None}
    assert lost_saves(settings, tally) == []
    # exactly once: each image holds one main-line revision per acknowledged save (a save
    # whose commit outlived the outage unseen was retried and answered with that revision)
    _sizes, rows = _rows(settings)
    for image_id, attempts in per_image.items():
        acked = [a for a in attempts if a.status == 200]
        assert [a.revision for a in acked] == list(range(1, len(acked) + 1))
        assert sum(r.image_id == image_id and r.revision is not None for r in rows) == len(acked)
    assert integrity_problems(settings) == []
    print(f"\n[{mode}] saves acknowledged {len(tally.acked())}, refused with 503 {len(refused)}")


# ---------------------------------------------------------------------------------------------
# 4. A database that cannot be reached: 503 everywhere on the API, the UI page still loads


def _unreachable_url(settings: Settings) -> str:
    if settings.database_url.startswith("sqlite"):
        return f"sqlite:///{settings.data_dir / 'no-such-dir' / 'facet.db'}"
    return f"postgresql+psycopg://facet@127.0.0.1:{free_port()}/gone"


def test_an_unreachable_database_answers_503_and_the_ui_page_still_loads(settings, caplog):
    caplog.set_level(logging.WARNING, logger="webapp.db_faults")
    studio = make_studio(settings)
    live = studio.sessions.kw["bind"]
    dead = make_engine(_unreachable_url(settings))
    try:
        with LiveServer(build_app(studio)) as url, \
                httpx.Client(base_url=url, auth=auth("ann"), timeout=30) as client:
            assert client.get("/api/images").status_code == 200
            studio.sessions.configure(bind=dead)  # every service of the studio shares it
            try:
                for r in (client.get("/api/images"),
                          client.put("/api/images/1/annotation", headers={"If-Match": '"1"'},
                                     content=encode_label_png(np.zeros((SIZE, SIZE), np.uint8))),
                          # addressed by a host name, the open-mode check reads the database
                          # before any route runs
                          client.get("/api/health", headers={"Host": "facet.example.org"})):
                    assert r.status_code == 503, (r.request.url, r.text)
                    assert r.headers["Retry-After"] == str(DB_UNAVAILABLE_RETRY_S)
                    assert r.json()["retry_after_s"] == DB_UNAVAILABLE_RETRY_S
                    assert "database is unavailable" in r.json()["detail"]
                    assert "Traceback" not in r.text and "SELECT" not in r.text
                page = httpx.get(url + "/", timeout=30)  # the studio's page itself
                assert page.status_code == 200 and "<html" in page.text.lower()
                login = httpx.post(url + "/login", data={"username": "ann",
                                                         "password": auth("ann")[1]}, timeout=30)
                assert login.status_code == 503, login.text  # the UI's login form: the same words
                assert login.headers["Retry-After"] == str(DB_UNAVAILABLE_RETRY_S)
                assert "database is unavailable" in login.json()["detail"]
            finally:
                studio.sessions.configure(bind=live)
            assert client.get("/api/images").status_code == 200
            login = httpx.post(url + "/login", data={"username": "ann", "password": auth("ann")[1]},
                               timeout=30)
            assert login.status_code == 200, login.text
    finally:
        dead.dispose()
        live.dispose()
    warned = [r.getMessage() for r in caplog.records
              if r.name == "webapp.db_faults" and r.levelno == logging.WARNING]
    assert any(m.startswith("GET /api/images: database unavailable, answered 503: ")
               for m in warned), warned
    assert any(m.startswith("UI login: database unavailable") for m in warned), warned


def test_only_busy_or_unreachable_database_errors_count_as_faults():
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    def sqlite_error(message: str, code: int) -> OperationalError:
        orig = sqlite3.OperationalError(message)
        orig.sqlite_errorcode = code
        return OperationalError("SELECT 1", {}, orig)

    assert database_fault(sqlite_error("database is locked", 5)).kind == "busy"
    assert database_fault(sqlite_error("unable to open database file", 14)).kind == "unavailable"
    assert database_fault(sqlite_error("no such table: images", 1)) is None  # a bug: stays 500
    assert database_fault(PoolTimeout("QueuePool limit reached")).kind == "busy"
    assert database_fault(IntegrityError("INSERT", {}, Exception("UNIQUE"))) is None
    assert database_fault(ProgrammingError("SELECT", {}, Exception("syntax"))) is None
    assert database_fault(ValueError("not a database error")) is None
