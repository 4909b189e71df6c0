"""What a user is told when the database is busy or cannot be reached.

The REST API answers 503 with ``Retry-After`` (:class:`webapp.server.DatabaseFaultGuard`), the
UI's login too (:func:`database_fault_answer`); the Gradio tabs show a message
(:func:`database_fault_notice`, :func:`webapp.ui.common.shows_database_faults`). Never the
driver's error.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse

from db.engine import DatabaseFault, database_fault

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


REPEAT_LOG_S = 60.0
"""A fault that repeats on its own (a timer's tick) is logged at WARNING at most once per this
many seconds (:class:`RepeatedFaultLog`); the repeats in between go to DEBUG."""


def _log_fault(fault: DatabaseFault, where: str, outcome: str,
               level: int = logging.WARNING) -> None:
    """Log ``fault`` at ``level`` with the driver's words, ``where`` (the request or UI event)
    and ``outcome`` (what the user got)."""
    log.log(level, "%s: database %s, %s: %s", where, fault.kind, outcome, fault.why)


class RepeatedFaultLog:
    """The log level for one more fault of an event that repeats by itself (a timer ticking in
    every open tab during an outage): WARNING for the first and then once per ``every_s``
    seconds, DEBUG in between, so an outage does not fill the log with one line per tick;
    :meth:`recovered` (the event worked again) makes the next fault a WARNING at once.
    ``clock``: seconds, monotonic (injectable for tests)."""

    def __init__(self, every_s: float = REPEAT_LOG_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s, self.clock = every_s, clock
        self._last_warning: float | None = None
        self._lock = threading.Lock()

    def level(self) -> int:
        now = self.clock()
        with self._lock:
            if self._last_warning is None or now - self._last_warning >= self.every_s:
                self._last_warning = now
                return logging.WARNING
            return logging.DEBUG

    def recovered(self) -> None:
        with self._lock:
            self._last_warning = None


def database_fault_answer(err: BaseException, busy_timeout_ms: int,
                          where: str) -> DatabaseFaultAnswer | None:
    """The REST answer to a database error that means "busy" or "unavailable"; ``None`` for
    any other error (a bug stays a 500). A REST write either happened or not: the words say
    which."""
    fault = database_fault(err)
    if fault is None:
        return None
    _log_fault(fault, where, "answered 503")
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


def database_fault_notice(err: BaseException, busy_timeout_ms: int, where: str,
                          repeats: RepeatedFaultLog | None = None) -> str | None:
    """What a studio tab shows for a database error that means "busy" or "unavailable";
    ``None`` for any other error. A tab's button may have done its work before the view's
    refresh failed, so the words promise nothing either way. ``repeats``: for an event that
    fires by itself, how loudly to log this one (WARNING otherwise)."""
    fault = database_fault(err)
    if fault is None:
        return None
    _log_fault(fault, where, "shown in the studio",
               repeats.level() if repeats is not None else logging.WARNING)
    why = (f"busy (another connection held a lock for more than {busy_timeout_ms / 1000:g} s, "
           "or it is overloaded)" if fault.kind == "busy" else
           "unavailable (unreachable, restarting, or the connection was lost)")
    retry = DB_BUSY_RETRY_S if fault.kind == "busy" else DB_UNAVAILABLE_RETRY_S
    return (f"The database is {why}. What you clicked may or may not have been done: in "
            f"{retry} s or so, open this tab again (or press Refresh) to see, then try again.")
