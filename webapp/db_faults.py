"""What a user is told when the database is busy or cannot be reached.

The REST API answers 503 with ``Retry-After`` (:class:`webapp.server.DatabaseFaultGuard`), the
UI's login too, and the Gradio tabs show the same words in a message
(:func:`webapp.ui.common.shows_database_faults`): never the driver's error.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.responses import JSONResponse

from db.engine import database_fault

log = logging.getLogger(__name__)

DB_BUSY_RETRY_S = 2
"""``Retry-After`` of a 503 for a busy (locked) database."""
DB_UNAVAILABLE_RETRY_S = 5
"""``Retry-After`` of a 503 for a database that cannot be reached (e.g. restarting)."""


@dataclass(frozen=True)
class DatabaseFaultAnswer:
    """What a client is told about a busy or unreachable database: 503, ``Retry-After``."""

    retry_after_s: int
    detail: str

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail, "retry_after_s": self.retry_after_s},
                            status_code=503, headers={"Retry-After": str(self.retry_after_s)})


def database_fault_answer(err: BaseException, busy_timeout_ms: int,
                          where: str) -> DatabaseFaultAnswer | None:
    """The answer to a database error that means "busy" or "unavailable"
    (:func:`db.engine.database_fault`), logged at WARNING with the driver's words and
    ``where`` (the request); ``None`` for any other error (a bug stays a 500)."""
    fault = database_fault(err)
    if fault is None:
        return None
    log.warning("%s: database %s, answered 503: %s", where, fault.kind, fault.why)
    if fault.kind == "busy":
        retry = DB_BUSY_RETRY_S
        return DatabaseFaultAnswer(retry, (
            f"the database is busy: another connection held a lock for more than "
            f"{busy_timeout_ms / 1000:g} s, or it is overloaded; nothing was changed. "
            f"Try again in {retry} s."))
    retry = DB_UNAVAILABLE_RETRY_S
    return DatabaseFaultAnswer(retry, (
        f"the database is unavailable (unreachable, restarting, or the connection was lost). "
        f"Try again in {retry} s; repeating a save is safe (the same save gives the same "
        f"revision)."))
