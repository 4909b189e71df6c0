"""Where Facet keeps things: flags, then environment variables, then defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import FacetError
from db.engine import BUSY_TIMEOUT_MS


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Build with :meth:`resolve`; pass the object around, never a global.

    ``db_busy_timeout_ms``: how long a statement waits for another connection's lock before it
    fails (``FACET_DB_BUSY_TIMEOUT_MS``; the web process then answers 503, "busy, retry").
    """

    data_dir: Path
    database_url: str
    queue_url: str
    db_busy_timeout_ms: int = BUSY_TIMEOUT_MS

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None,
                database_url: str | None = None, queue_url: str | None = None,
                env: dict[str, str] | None = None,
                db_busy_timeout_ms: int | None = None) -> "Settings":
        """Raises :class:`FacetError` for a ``FACET_DB_BUSY_TIMEOUT_MS`` that is not a whole
        number of milliseconds >= 1."""
        env = os.environ if env is None else env
        root = Path(data_dir or env.get("FACET_DATA_DIR") or "data").expanduser().resolve()
        db_url = database_url or env.get("FACET_DATABASE_URL") or f"sqlite:///{root / 'facet.db'}"
        q_url = queue_url or env.get("FACET_QUEUE_URL") or f"sqlite:///{root / 'queue.db'}"
        busy = db_busy_timeout_ms
        if busy is None:
            raw = (env.get("FACET_DB_BUSY_TIMEOUT_MS") or "").strip()
            if raw and not raw.isdigit():
                raise FacetError(f"FACET_DB_BUSY_TIMEOUT_MS must be a whole number of "
                                 f"milliseconds, got {raw!r}")
            busy = int(raw) if raw else BUSY_TIMEOUT_MS
        if busy < 1:
            raise FacetError(f"FACET_DB_BUSY_TIMEOUT_MS must be at least 1 ms, got {busy}")
        return cls(root, db_url, q_url, busy)

    # Sub-folders of the data dir; created on demand by whoever writes there.
    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def labels_dir(self) -> Path:
        return self.data_dir / "labels"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"
