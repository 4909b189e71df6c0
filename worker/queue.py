"""The Huey instances (one per route) and how tasks are bound to them; never built at import time.

Tasks are routed: each row of the table names its route (:data:`ROUTES`), ``train`` (training
runs and the reaper of dead runs) or ``light`` (pre-annotations, embeddings, scoring, retrain
checks). Each route is its own Huey instance, named ``facet-<route>`` (:func:`queue_name`), over
the same storage: Huey keeps the queues of differently named instances apart in one SQLite
file or one Redis, and a consumer runs exactly one instance, so a consumer of ``light`` never
sees a training message. ``python app.py worker --queues train`` (the GPU box) runs the train
instance only, ``--queues light`` the light one, the default both (:mod:`worker.consumer`).

:func:`make_huey` builds one instance from :class:`db.settings.Settings` and a route
(:func:`make_hueys`: every route); ``settings.queue_url`` picks the storage:

* ``sqlite:///path/queue.db`` (the default, a file in the data dir): :class:`huey.SqliteHuey`;
* ``redis://host:port/db`` (or ``rediss://``, ``unix://``): :class:`huey.PriorityRedisHuey`
  (the plain ``RedisHuey`` refuses task priorities, which order pre-annotations before
  training here).

Tasks are plain functions of :mod:`worker.tasks`, listed with their Huey settings in its table
:data:`worker.tasks.TASKS` (name → :class:`TaskSpec`). An entry point imports both modules and
registers the table on its own instances (each task on the instance of its route):

* the consumer (:mod:`worker.consumer`) with :func:`bind_tasks`: each task runs its function
  with the process's :class:`worker.context.WorkerContext` as the first argument;
* the web process (:mod:`worker.client`) with :func:`declare_tasks`: it only enqueues.

Both register the same names, routes and settings; a message carries the name (Huey's
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
"""Prefix of Huey's instance names: ``facet-train``, ``facet-light`` (of their keys and locks)."""
TRAIN = "train"
"""The route of training runs (and of the reaper of dead runs): the GPU box takes it."""
LIGHT = "light"
"""The route of everything else: pre-annotations, embeddings, scoring, retrain checks."""
ROUTES: tuple[str, ...] = (TRAIN, LIGHT)
"""Every route, in the order a ``worker`` starts their consumers."""


def queue_name(route: str) -> str:
    """Huey's name of the instance of ``route`` (``facet-train``); a FacetError when unknown."""
    if route not in ROUTES:
        raise FacetError(f"unknown queue {route!r}: choose from {', '.join(ROUTES)}")
    return f"{QUEUE_NAME}-{route}"


def parse_routes(raw: str | None) -> tuple[str, ...]:
    """The routes of ``--queues`` (``"train,light"``; None or empty: every route), in
    :data:`ROUTES` order, duplicates dropped; a one-line FacetError naming an unknown one."""
    if raw is None or not raw.strip():
        return ROUTES
    asked = [part.strip() for part in raw.split(",")]
    unknown = [part for part in asked if part not in ROUTES]
    if unknown or not any(asked):
        bad = ", ".join(repr(u) for u in unknown) or "an empty name"
        raise FacetError(f"--queues {raw.strip()}: unknown queue {bad}; choose from "
                         f"{', '.join(ROUTES)} (comma-separated)")
    return tuple(r for r in ROUTES if r in asked)


def sqlite_queue_path(url: str) -> Path:
    """The file of a ``sqlite:///…`` queue URL (``sqlite:////abs`` or ``sqlite:///rel``)."""
    if not url.startswith("sqlite:///"):
        raise FacetError(f"not a sqlite:/// queue URL: {url!r}")
    path = unquote(url[len("sqlite:///"):])
    if not path or path == ":memory:":
        raise FacetError(f"the queue needs a file, got {url!r} (an in-memory queue is not shared "
                         "between the web process and the worker)")
    return Path(path).expanduser()


def make_huey(settings: Settings, route: str, *, immediate: bool = False) -> Huey:
    """The Huey instance of ``route`` (:data:`ROUTES`) for ``settings.queue_url``, without
    tasks.

    ``store_intermediate_errors=False``: a caller waiting on a task's result sees an error only
    once no retry is left (Huey otherwise raises on the first failed attempt).
    ``immediate=True`` runs tasks in the calling thread with in-memory storage (unit tests); a
    consumer refuses such an instance.
    """
    url = settings.queue_url
    scheme = urlsplit(url).scheme
    common = dict(name=queue_name(route), immediate=immediate, store_intermediate_errors=False,
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


def make_hueys(settings: Settings, *, immediate: bool = False) -> dict[str, Huey]:
    """One instance per route (:func:`make_huey`) over the same storage, by route."""
    return {route: make_huey(settings, route, immediate=immediate) for route in ROUTES}


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
    """A schedule (``huey.crontab(...)``): the consumers of its route enqueue the task
    themselves (so it runs on that kind of worker only)."""
    route: str = LIGHT
    """The instance it is registered on (:data:`ROUTES`): which workers run it."""


@dataclass(frozen=True)
class Tasks:
    """Facet's tasks registered on the instances of their routes, by name:
    ``tasks.enqueue("facet.predict", 7)`` writes to the light queue, ``"facet.train"`` to the
    train one. In immediate mode the task runs at once; ``.get()`` on the result gives its
    value."""

    hueys: Mapping[str, Huey]
    """The instances by route."""
    by_name: Mapping[str, TaskWrapper]
    routes: Mapping[str, str]
    """The route of each task by name."""

    def huey_for(self, route: str) -> Huey:
        """The instance of ``route`` (its queue, locks and schedule)."""
        return self.hueys[route]

    def enqueue(self, name: str, *args: Any, priority: int | None = None) -> Result | None:
        """Enqueue the task ``name`` with ``args`` (``priority``: instead of its own); its
        result handle."""
        if priority is None:
            return self.by_name[name](*args)
        return self.by_name[name](*args, priority=priority)


def bind_tasks(hueys: Mapping[str, Huey], table: Mapping[str, TaskSpec],
               context: WorkerContext) -> Tasks:
    """Register ``table`` on ``hueys`` (by route, :func:`make_hueys`) to run here: each task
    calls its function with ``context`` first. Returns the handles; ``context`` keeps them to
    enqueue further tasks by name (on any route: a light task starts a training run). Which
    routes run here is the consumer's choice: it runs the instances it takes."""
    bodies = {name: partial(spec.func, context) for name, spec in table.items()}
    tasks = _register(hueys, table, context.options, bodies)
    context.tasks = tasks
    return tasks


def declare_tasks(hueys: Mapping[str, Huey], table: Mapping[str, TaskSpec],
                  options: WorkerOptions) -> Tasks:
    """Register ``table`` on ``hueys`` (by route) for enqueueing only (the web process): no
    context, no database, no models; a task run on these instances would refuse."""
    bodies = {name: partial(_runs_in_a_worker, name) for name in table}
    return _register(hueys, table, options, bodies)


def _runs_in_a_worker(name: str, *args: Any, **kwargs: Any) -> None:
    raise FacetError(f"{name} runs in a worker process (python app.py worker), not here")


def _register(hueys: Mapping[str, Huey], table: Mapping[str, TaskSpec], options: WorkerOptions,
              bodies: Mapping[str, Callable[..., Any]]) -> Tasks:
    """Register each row of ``table`` with its body from ``bodies`` on the instance of its
    route; the handles."""
    by_name, routes = {}, {}
    for name, spec in table.items():
        queue_name(spec.route)  # a FacetError for a route that does not exist
        if spec.route not in hueys:
            raise FacetError(f"{name} is routed to {spec.route!r}, which has no Huey instance")
        h = hueys[spec.route]
        routes[name] = spec.route
        settings: dict[str, Any] = dict(name=name, priority=spec.priority, retries=spec.retries,
                                        retry_delay=spec.retry_delay_s)
        if spec.timeout_option is not None:
            settings["timeout"] = getattr(options, spec.timeout_option)
        # Huey keys a task by its function's module and name ("worker.tasks.facet.predict"):
        # the body takes the function's module, so both sides use the same key.
        body = update_wrapper(bodies[name], spec.func)
        register = h.task if spec.periodic is None else partial(h.periodic_task, spec.periodic)
        by_name[name] = register(**settings)(body)
    return Tasks(dict(hueys), by_name, routes)
