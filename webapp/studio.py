"""The studio's services, built once per server and handed to the use cases
(:mod:`webapp.actions`), the API routes and the UI views.

Nothing here is per user: per-user state lives in ``gr.State`` (UI) or the request (API).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.labels import CELEBAMASK, LabelSet
from db.database import open_database
from db.engine import session_scope
from db.settings import Settings
from webapp.auth import Auth
from webapp.options import ServeOptions
from webapp.ports import TaskQueue
from webapp.predictions import PredictionService
from webapp.sam_service import SamService


@dataclass
class Studio:
    """Settings, sessions and services shared by every request of one server."""

    settings: Settings
    options: ServeOptions
    sessions: sessionmaker[Session]
    labels: LabelSet
    auth: Auth
    predictions: PredictionService
    sam: SamService | None
    tasks: TaskQueue | None

    @classmethod
    def create(cls, settings: Settings, options: ServeOptions, tasks: TaskQueue | None,
               labels: LabelSet = CELEBAMASK) -> "Studio":
        """Upgrade/open the database and load SAM (when configured). Raises on bad input."""
        sessions = open_database(settings)
        return cls(settings, options, sessions, labels, Auth(sessions),
                   PredictionService(settings, sessions),
                   SamService.from_options(settings, sessions, options), tasks)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success (``db.engine.session_scope``)."""
        with session_scope(self.sessions) as session:
            yield session
