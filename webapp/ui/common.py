"""Small things every view needs: who is acting, and turning errors into messages."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gradio as gr

from webapp.auth import Actor
from webapp.browser_login import logged_in_user
from webapp.db_faults import RepeatedFaultLog, database_fault_notice
from webapp.studio import Studio


def actor_of(studio: Studio, request: gr.Request | None) -> Actor:
    """The logged-in user of a UI event (or the open-mode local admin).

    Raises :class:`webapp.auth.AccessDenied` when nobody valid is behind the request.
    """
    username = getattr(request, "username", None) if request is not None else None
    raw = getattr(request, "request", None)   # the HTTP request behind a gr.Request
    if username is None and raw is not None:  # a component's server function: Gradio leaves
        username = logged_in_user(raw)        # the login out, the cookie still carries it
    client = request.client.host if request is not None and request.client else None
    return studio.auth.from_username(username, client)


def ok(text: str) -> str:
    return f"✓ {text}"


def warn(text: str) -> str:
    return f"⚠ {text}"


def fail(text: str) -> str:
    return f"✗ {text}"


def info(text: str) -> str:
    return f"ℹ {text}"


def shows_database_faults(studio: Studio, handler: Callable[..., Any],
                          quietly: Callable[[str], Any] | None = None) -> Callable[..., Any]:
    """``handler`` (a UI event's function) with a busy or unreachable database shown as a
    message (:func:`webapp.db_faults.database_fault_notice`), not the driver's error; any
    other error passes on. The signature is kept (Gradio fills ``gr.Request``); ``handler``
    must be a plain function (not async, not a generator). ``quietly(words)``, for events
    nobody clicked (a timer): what to return instead of the pop-up message; its faults are
    logged at WARNING once a minute (:class:`webapp.db_faults.RepeatedFaultLog`), not per tick."""
    repeats = RepeatedFaultLog() if quietly is not None else None

    @functools.wraps(handler)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            answer = handler(*args, **kwargs)
        except Exception as err:
            words = database_fault_notice(err, studio.settings.db_busy_timeout_ms,
                                          f"UI {handler.__name__}", repeats)
            if words is None:
                raise
            if quietly is not None:
                return quietly(warn(words))
            raise gr.Error(words, title="Database") from None
        if repeats is not None:
            repeats.recovered()
        return answer
    return guarded
