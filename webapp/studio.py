"""The studio's services, built once per server and handed to the API routes and UI views.

Nothing here is per user: per-user state lives in ``gr.State`` (UI) or the request (API).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from db.database import open_database
from db.jobs import create_job, fail, pending_job
from db.engine import session_scope
from db.settings import Settings
from core.errors import FacetError
from core.labels import CELEBAMASK, LabelSet
from webapp.auth import Auth
from webapp.options import ServeOptions
from webapp.predictions import ParserService
from webapp.ports import TaskQueue
from webapp.sam_service import SamService


@dataclass
class Studio:
    """Settings, sessions and services shared by every request of one server."""

    settings: Settings
    options: ServeOptions
    sessions: sessionmaker[Session]
    labels: LabelSet
    auth: Auth
    parsers: ParserService
    sam: SamService | None
    tasks: TaskQueue | None

    @classmethod
    def create(cls, settings: Settings, options: ServeOptions, tasks: TaskQueue | None,
               labels: LabelSet = CELEBAMASK) -> "Studio":
        """Upgrade/open the database and load SAM (when configured). Raises on bad input."""
        sessions = open_database(settings)
        return cls(settings, options, sessions, labels, Auth(sessions),
                   ParserService(settings, sessions, labels),
                   SamService.from_options(settings, sessions, options), tasks)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success (``db.engine.session_scope``)."""
        with session_scope(self.sessions) as session:
            yield session

    def queue_training(self, user_id: int | None, source: str) -> int:
        """Create a ``train`` job and enqueue it; returns its id.

        Raises :class:`NoWorkerError` without a task queue and :class:`TrainingPendingError`
        when a training job is already queued or running (one at a time).
        """
        if self.tasks is None:
            raise NoWorkerError("no background worker: start `python app.py serve` without "
                                "--no-worker, or run `python app.py worker` beside it")
        with self.session() as session:
            pending = pending_job(session, "train")
            if pending is not None:
                raise TrainingPendingError(pending.id, pending.state.value)
            job_id = create_job(session, "train", {"source": source}, user_id).id
        try:
            self.tasks.enqueue_training(job_id)
        except Exception as err:  # the queue is down: a job left queued would block training
            with self.session() as session:
                fail(session, job_id, f"could not be queued: {err}")
            raise FacetError(f"training could not be queued: {err}") from err
        return job_id


class NoWorkerError(FacetError):
    """The server has no task queue, so background work cannot run."""


class TrainingPendingError(FacetError):
    """A training job is already queued or running."""

    def __init__(self, job_id: int, state: str) -> None:
        super().__init__(f"training job {job_id} is already {state}")
        self.job_id = job_id
