"""Small things every view needs: who is acting, and turning errors into messages."""
from __future__ import annotations

import gradio as gr

from webapp.auth import Actor
from webapp.browser_login import logged_in_user
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
