"""What Facet's tasks share inside one worker process: :class:`WorkerContext`.

Built once at the entry (:mod:`worker.consumer`, or a test) from the settings and options it was
given, bound to the Huey instances (one per route) by :func:`worker.queue.bind_tasks`, and
passed to every task function of :mod:`worker.tasks` as its first argument. Nothing here is a
module global.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from db.settings import Settings
from worker.options import WorkerOptions
from worker.sam_cache import SamCache

if TYPE_CHECKING:
    from huey import Huey

    from model.predictor_cache import PredictorCache
    from worker.queue import Tasks


class WorkerContext:
    """Settings, options, database sessions, loaded models and the task handles of one worker.

    ``sessions``: a session factory to use (tests); by default each worker process opens the
    database of ``settings`` itself. ``sam_builders``: SAM architectures by model type (tests
    pass tiny ones). Sessions and model caches are built on first use in each process, so
    after a fork (Huey's process worker type) a worker process never shares the parent's
    database connections.
    """

    def __init__(self, settings: Settings, options: WorkerOptions, *,
                 sessions: sessionmaker[Session] | None = None,
                 sam_builders: Mapping | None = None) -> None:
        self.settings = settings
        self.options = options
        self.tasks: Tasks | None = None
        """The task handles this context enqueues through; set by :func:`worker.queue.bind_tasks`."""
        self._given_sessions = sessions
        self._sam_builders = sam_builders
        self._pid = -1
        self._sessions: sessionmaker[Session] | None = None
        self._predictors: PredictorCache | None = None
        self._sam: SamCache | None = None

    def _fresh(self) -> None:
        """Build sessions and caches once per process (again in a forked child)."""
        if self._pid == os.getpid():
            return
        from db.database import open_database
        from model.predictor_cache import PredictorCache

        self._pid = os.getpid()
        given = self._given_sessions
        self._sessions = given if given is not None else open_database(self.settings)
        self._predictors = PredictorCache(device=self.options.device)
        self._sam = SamCache(self._sam_builders)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory of this process."""
        self._fresh()
        assert self._sessions is not None
        return self._sessions

    @property
    def predictors(self) -> PredictorCache:
        """Loaded parsers of this process by checkpoint file (the newest two)."""
        self._fresh()
        assert self._predictors is not None
        return self._predictors

    @property
    def sam(self) -> SamCache:
        """The SAM model this process keeps loaded."""
        self._fresh()
        assert self._sam is not None
        return self._sam

    def huey_for(self, route: str) -> Huey:
        """The Huey instance of ``route`` the tasks are bound to (for their locks)."""
        return self._bound().huey_for(route)

    def enqueue(self, name: str, *args: Any) -> None:
        """Enqueue the task ``name`` (e.g. ``"facet.score_all"``) with ``args`` (ids)."""
        self._bound().enqueue(name, *args)

    def _bound(self) -> Tasks:
        if self.tasks is None:
            raise FacetError("the worker context is not bound to a queue (worker.queue.bind_tasks)")
        return self.tasks
