"""Where Facet keeps things: flags, then environment variables, then defaults."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Resolved locations. Build with :meth:`resolve`; pass the object around, never a global."""

    data_dir: Path
    database_url: str
    queue_url: str

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike | None = None,
                database_url: str | None = None, queue_url: str | None = None,
                env: dict[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        root = Path(data_dir or env.get("FACET_DATA_DIR") or "data").expanduser().resolve()
        db_url = database_url or env.get("FACET_DATABASE_URL") or f"sqlite:///{root / 'facet.db'}"
        q_url = queue_url or env.get("FACET_QUEUE_URL") or f"sqlite:///{root / 'queue.db'}"
        return cls(root, db_url, q_url)

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
