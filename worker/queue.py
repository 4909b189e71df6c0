"""The Huey instance and how tasks are bound to it; never built at import time.

:func:`make_huey` builds an instance from :class:`db.settings.Settings`; ``settings.queue_url``
picks the storage:

* ``sqlite:///path/queue.db`` (the default, a file in the data dir): :class:`huey.SqliteHuey`;
* ``redis://host:port/db`` (or ``rediss://``, ``unix://``): :class:`huey.PriorityRedisHuey`
  (the plain ``RedisHuey`` refuses task priorities, which order pre-annotations before
  training here).

Tasks are plain functions of :mod:`worker.tasks`, listed with their Huey settings in its table
:data:`worker.tasks.TASKS` (name → :class:`TaskSpec`). An entry point imports both modules and
registers the table on its own instance:

* the consumer (:mod:`worker.consumer`) with :func:`bind_tasks`: each task runs its function
  with the process's :class:`worker.context.WorkerContext` as the first argument;
* the web process (:mod:`worker.client`) with :func:`declare_tasks`: it only enqueues.

Both register the same names and settings; a message carries the name (Huey's
``worker.tasks.<name>``), the arguments (ids and paths, never objects) and the settings
(priority, retries, timeout) through the shared storage, so the two processes share nothing else.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial, update_wrapper
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import huey
from huey import Huey
from huey.api import Result, TaskWrapper

from core.errors import FacetError
from db.settings import Settings
from worker.options import WorkerOptions

if TYPE_CHECKING:
    from worker.context import WorkerContext

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


def make_huey(settings: Settings, *, immediate: bool = False) -> Huey:
    """A Huey instance for ``settings.queue_url``, without tasks.

    ``store_intermediate_errors=False``: a caller waiting on a task's result sees an error only
    once no retry is left (Huey otherwise raises on the first failed attempt).
    ``immediate=True`` runs tasks in the calling thread with in-memory storage (unit tests); a
    consumer refuses such an instance.
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


@dataclass(frozen=True)
class TaskSpec:
    """How one task function is registered: one row of :data:`worker.tasks.TASKS`."""

    func: Callable[..., Any]
    """A function of :mod:`worker.tasks`; its first argument is the worker's context."""
    priority: int | None = None
    """Higher runs first."""
    retries: int = 0
    """Attempts after a failed one."""
    retry_delay_s: int = 0
    """Seconds between two attempts."""
    timeout_option: str | None = None
    """The :class:`WorkerOptions` field holding the task's timeout in seconds (Huey enforces
    it with process workers only)."""
    periodic: Callable[[Any], bool] | None = None
    """A schedule (``huey.crontab(...)``): the consumer enqueues the task itself."""


@dataclass(frozen=True)
class Tasks:
    """Facet's tasks registered on one Huey instance, by name: ``tasks.enqueue("facet.predict",
    7)``. In immediate mode the task runs at once; ``.get()`` on the result gives its value."""

    huey: Huey
    by_name: Mapping[str, TaskWrapper]

    def enqueue(self, name: str, *args: Any, priority: int | None = None) -> Result | None:
        """Enqueue the task ``name`` with ``args`` (``priority``: instead of its own); its
        result handle."""
        if priority is None:
            return self.by_name[name](*args)
        return self.by_name[name](*args, priority=priority)


def bind_tasks(h: Huey, table: Mapping[str, TaskSpec], context: WorkerContext) -> Tasks:
    """Register ``table`` on ``h`` to run here: each task calls its function with ``context``
    first. Returns the handles; ``context`` keeps them to enqueue further tasks by name."""
    bodies = {name: partial(spec.func, context) for name, spec in table.items()}
    tasks = _register(h, table, context.options, bodies)
    context.tasks = tasks
    return tasks


def declare_tasks(h: Huey, table: Mapping[str, TaskSpec], options: WorkerOptions) -> Tasks:
    """Register ``table`` on ``h`` for enqueueing only (the web process): no context, no
    database, no models; a task run on this instance would refuse."""
    bodies = {name: partial(_runs_in_a_worker, name) for name in table}
    return _register(h, table, options, bodies)


def _runs_in_a_worker(name: str, *args: Any, **kwargs: Any) -> None:
    raise FacetError(f"{name} runs in a worker process (python app.py worker), not here")


def _register(h: Huey, table: Mapping[str, TaskSpec], options: WorkerOptions,
              bodies: Mapping[str, Callable[..., Any]]) -> Tasks:
    """Register each row of ``table`` with its body from ``bodies``; the handles."""
    by_name = {}
    for name, spec in table.items():
        settings: dict[str, Any] = dict(name=name, priority=spec.priority, retries=spec.retries,
                                        retry_delay=spec.retry_delay_s)
        if spec.timeout_option is not None:
            settings["timeout"] = getattr(options, spec.timeout_option)
        # Huey keys a task by its function's module and name ("worker.tasks.facet.predict"):
        # the body takes the function's module, so both sides use the same key.
        body = update_wrapper(bodies[name], spec.func)
        register = h.task if spec.periodic is None else partial(h.periodic_task, spec.periodic)
        by_name[name] = register(**settings)(body)
    return Tasks(h, by_name)
