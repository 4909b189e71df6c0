"""Concurrent annotators saving label maps: throughput, latency, and nothing lost.

    python bench/load.py [--annotators 16 64] [--databases sqlite postgresql] [--seconds 20]
                         [--images 8] [--size 256] [--think-ms 250]

For each database and each annotator count: a fresh data dir, ``facet serve --no-worker`` in
its own process (uvicorn, as in production; PostgreSQL rows use a throwaway server started here
and, when ``redis-server`` exists, a Redis queue), one account per annotator, and ``--images``
shared images. Each annotator is a thread with its own HTTP Basic client: it picks an image,
GETs its annotation (the ETag is its base), paints a rectangle of its own class, PUTs it with
``If-Match``, waits ``--think-ms`` and goes on, for ``--seconds``. A 409 (someone saved first)
is counted, and its pixels must be kept as a conflict draft.

Afterwards every acknowledged save is read back from the database: it must be there with the
exact pixels sent, numbered right after its base (no save silently replaced another; an
identical repeat of the base is answered with the base's number); every
409's kept draft must hold the loser's pixels. Prints a markdown table; docs/BENCHMARKS.md
quotes it.
"""
from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from sqlalchemy import select  # noqa: E402

from core.imageio import decode_label_png, encode_label_png  # noqa: E402
from db.database import open_database  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.images import add_image  # noqa: E402
from db.models import Revision, Role  # noqa: E402
from db.settings import Settings  # noqa: E402
from db.users import create_user  # noqa: E402
from tests.webapp.live import free_port  # noqa: E402

PASSWORD = "load-test-pass"


@dataclass
class Ack:
    image_id: int
    base: int | None
    number: int
    pixels: np.ndarray


@dataclass
class Loser:
    image_id: int
    draft_id: int
    user: str
    pixels: np.ndarray


@dataclass
class Tally:
    """What the annotator threads saw (appended under the GIL; list.append is atomic)."""

    latencies_ms: list[float] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    losers: list[Loser] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _face_png(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _prepare(settings: Settings, annotators: int, images: int, size: int) -> tuple[list[str], list[int]]:
    sessions = open_database(settings)
    names = [f"ann{i:02d}" for i in range(annotators)]
    with session_scope(sessions) as s:
        for name in names:
            create_user(s, name, PASSWORD, Role.annotator)
        create_user(s, "lead", PASSWORD, Role.admin)
        ids = [add_image(s, settings, _face_png(i, size), f"face{i}.png").image.id
               for i in range(images)]
    sessions.kw["bind"].dispose()
    return names, ids


def _annotator(base_url: str, name: str, klass: int, ids: list[int], size: int, until: float,
               think_s: float, seed: int, tally: Tally) -> None:
    rng = np.random.default_rng(seed)
    with httpx.Client(base_url=base_url, auth=(name, PASSWORD), timeout=60) as client:
        while time.monotonic() < until:
            image_id = int(rng.choice(ids))
            got = client.get(f"/images/{image_id}/annotation")
            if got.status_code == 200:
                base = int(got.headers["ETag"].strip('"'))
                label = decode_label_png(got.content, 19).copy()
                headers = {"If-Match": got.headers["ETag"]}
            elif got.status_code == 404:
                base, headers = None, {}
                label = np.zeros((size, size), np.uint8)  # label maps are image-sized here
            else:
                tally.errors.append(f"GET {got.status_code}: {got.text[:200]}")
                continue
            h, w = label.shape
            y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            label[y:y + int(rng.integers(4, h // 3)), x:x + int(rng.integers(4, w // 3))] = klass
            start = time.perf_counter()
            put = client.put(f"/images/{image_id}/annotation", content=encode_label_png(label),
                             headers=headers)
            tally.latencies_ms.append((time.perf_counter() - start) * 1000)
            if put.status_code == 200:
                tally.acks.append(Ack(image_id, base, put.json()["revision"], label))
            elif put.status_code == 409:
                tally.losers.append(Loser(image_id, put.json()["kept_draft_id"], name, label))
            else:
                tally.errors.append(f"PUT {put.status_code}: {put.text[:200]}")
            time.sleep(think_s)


def _verify(settings: Settings, tally: Tally) -> tuple[int, int, int]:
    """(lost or changed acknowledged saves, saves numbered past their base, losers not kept)."""
    sessions = open_database(settings)
    lost = skipped = unkept = 0
    with session_scope(sessions) as s:
        for ack in tally.acks:
            row = s.scalar(select(Revision).where(Revision.image_id == ack.image_id,
                                                  Revision.revision == ack.number))
            if row is None or not np.array_equal(decode_label_png(row.label_png, 19), ack.pixels):
                lost += 1
            # numbered right after its base; or the base itself when it repeated what the base
            # held (an identical save answers the same revision; its pixels are checked above)
            if ack.number not in ((ack.base or 0) + 1, ack.base):
                skipped += 1
        for loser in tally.losers:
            row = s.get(Revision, loser.draft_id)
            if (row is None or row.revision is not None or row.author.name != loser.user
                    or not np.array_equal(decode_label_png(row.label_png, 19), loser.pixels)):
                unkept += 1
    sessions.kw["bind"].dispose()
    return lost, skipped, unkept


def _serve(settings: Settings, port: int) -> subprocess.Popen:
    env = {"FACET_DATA_DIR": str(settings.data_dir), "FACET_DATABASE_URL": settings.database_url,
           "FACET_QUEUE_URL": settings.queue_url, "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    log = (settings.data_dir / "serve.log").open("ab")
    proc = subprocess.Popen([sys.executable, "app.py", "serve", "--no-worker", "--no-prior",
                             "--port", str(port)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2,
                         auth=("lead", PASSWORD)).status_code == 200:
                return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                break
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("serve did not start: " + (settings.data_dir / "serve.log").read_text()[-2000:])


def run_one(database: str, annotators: int, args, root: Path, servers: dict) -> dict:
    data_dir = root / f"{database}-{annotators}"
    data_dir.mkdir(parents=True)
    url = queue = None
    if database == "postgresql":
        name = f"load_{uuid.uuid4().hex[:10]}"
        url = servers["postgres"].create_database(name)
        queue = servers.get("redis")
    settings = Settings.resolve(data_dir=data_dir, database_url=url, queue_url=queue, env={})
    names, ids = _prepare(settings, annotators, args.images, args.size)
    port = free_port()
    web = _serve(settings, port)
    tally = Tally()
    try:
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=_annotator, args=(
            f"http://127.0.0.1:{port}/api", name, 1 + i % 18, ids, args.size, until,
            args.think_ms / 1000,
            i, tally)) for i, name in enumerate(names)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
    finally:
        web.terminate()
        web.wait(30)
    lost, skipped, unkept = _verify(settings, tally)
    lat = sorted(tally.latencies_ms) or [float("nan")]
    return {"database": database, "queue": "redis" if queue else "sqlite",
            "annotators": annotators, "saves/s": len(tally.acks) / elapsed,
            "p50 ms": statistics.median(lat), "p95 ms": lat[int(0.95 * (len(lat) - 1))],
            "max ms": lat[-1], "acked": len(tally.acks), "409": len(tally.losers),
            "errors": len(tally.errors), "lost": lost, "overwritten": skipped,
            "losers not kept": unkept, "first error": tally.errors[0] if tally.errors else ""}


def _start_servers(databases: list[str], root: Path) -> dict:
    servers: dict = {}
    if "postgresql" in databases:
        from tests.pg_server import start_postgres

        servers["postgres"] = start_postgres()
        import shutil

        if shutil.which("redis-server"):
            port = free_port()
            servers["redis_proc"] = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            time.sleep(0.5)
            servers["redis"] = f"redis://127.0.0.1:{port}/0"
    return servers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--images", type=int, default=8, help="shared images (default 8)")
    parser.add_argument("--size", type=int, default=256, help="image and label side, px")
    parser.add_argument("--think-ms", type=float, default=250.0,
                        help="pause after each save, ms (default 250)")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="facet-load-") as tmp:
        root = Path(tmp)
        servers = _start_servers(args.databases, root)
        try:
            for database in args.databases:
                for n in args.annotators:
                    rows.append(run_one(database, n, args, root, servers))
                    print(f"done: {database} x {n}", file=sys.stderr, flush=True)
        finally:
            if "redis_proc" in servers:
                servers["redis_proc"].terminate()
            if "postgres" in servers:
                servers["postgres"].stop()
    print(f"{args.seconds:.0f} s per row, {args.images} shared images of {args.size} px, "
          f"think {args.think_ms:.0f} ms between saves\n")
    cols = ["database", "queue", "annotators", "saves/s", "p50 ms", "p95 ms", "max ms", "acked",
            "409", "errors", "lost", "overwritten", "losers not kept"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c])
                                for c in cols) + " |")
    for row in rows:
        if row["first error"]:
            print(f"\n{row['database']} x {row['annotators']}: first error: {row['first error']}")
    if any(row["lost"] or row["overwritten"] or row["losers not kept"] for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
