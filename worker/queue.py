"""The Huey instance: built from :class:`db.settings.Settings`, never at import time.

``settings.queue_url`` picks the storage (DESIGN.md):

* ``sqlite:///path/queue.db`` (the default, a file in the data dir): :class:`huey.SqliteHuey`;
* ``redis://host:port/db`` (or ``rediss://``, ``unix://``): :class:`huey.PriorityRedisHuey`
  (the plain ``RedisHuey`` refuses task priorities, which order pre-annotations before
  training here).

Tasks are added to an instance by :func:`worker.tasks.register_tasks`; the consumer entry
(:mod:`worker.consumer`) and the web process's client (:mod:`worker.client`) each build their
own instance with the same task names, so they talk through the shared storage only.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import huey

from db.settings import Settings
from core.errors import FacetError

QUEUE_NAME = "facet"
"""Huey's name for the queue (prefix of its keys and lock names)."""


def sqlite_queue_path(url: str) -> Path:
    """The file of a ``sqlite:///…`` queue URL (``sqlite:////abs`` or ``sqlite:///rel``)."""
    if not url.startswith("sqlite:///"):
        raise FacetError(f"not a sqlite:/// queue URL: {url!r}")
    path = unquote(url[len("sqlite:///"):])
    if not path or path == ":memory:":
        raise FacetError(f"the queue needs a file, got {url!r} (an in-memory queue is not shared "
                         "between the web process and the worker)")
    return Path(path).expanduser()


def make_huey(settings: Settings, *, immediate: bool = False) -> huey.Huey:
    """A Huey instance for ``settings.queue_url``, without tasks.

    ``store_intermediate_errors=False``: a caller waiting on a task's result sees an error only
    once no retry is left (NOTES.md). ``immediate=True`` runs tasks in the calling thread with
    in-memory storage (unit tests); a consumer refuses such an instance.
    """
    url = settings.queue_url
    scheme = urlsplit(url).scheme
    common = dict(name=QUEUE_NAME, immediate=immediate, store_intermediate_errors=False,
                  utc=True)
    if scheme == "sqlite":
        path = sqlite_queue_path(url)
        if not immediate:
            path.parent.mkdir(parents=True, exist_ok=True)
        # timeout: SQLite busy timeout in seconds; the web process, the consumer and its
        # workers all write to this one file.
        return huey.SqliteHuey(filename=str(path), timeout=30, **common)
    if scheme in ("redis", "rediss", "unix"):
        return huey.PriorityRedisHuey(url=url, **common)
    raise FacetError(f"unsupported queue URL {url!r}: use sqlite:///path/queue.db or "
                     "redis://host:port/db")
