"""Refuse browser requests that another site makes to the studio (CSRF and DNS rebinding).

- An unsafe request (POST, PUT, PATCH, DELETE) whose ``Origin`` is not this server's own is
  refused: a page elsewhere cannot activate models, upload images or save labels through a
  browser that is logged in (or, in open mode, that simply runs on this machine).
- In open mode (no users), a request addressed to a non-loopback host name is refused, so a
  rebound DNS name cannot read the open studio from a page elsewhere.

Requests without an ``Origin`` header (curl, scripts, the API clients) are not affected.
"""
from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from webapp.options import is_loopback

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def host_name(host_header: str) -> str:
    """``"127.0.0.1:7860"`` → ``"127.0.0.1"``; ``"[::1]:80"`` → ``"::1"``."""
    return urlsplit(f"//{host_header}").hostname or ""


def refusal(method: str, host: str, origin: str | None, open_mode: Callable[[], bool]) -> str | None:
    """Why a request must be refused, or ``None``. ``host`` and ``origin`` are header values."""
    if not is_loopback(host_name(host)) and open_mode():
        return (f"this studio has no users and answers only requests addressed to this machine "
                f"(localhost), not {host!r}")
    if method in UNSAFE_METHODS and origin is not None and urlsplit(origin).netloc != host:
        return f"cross-site request refused: origin {origin!r} is not this server ({host!r})"
    return None


class SameOriginGuard:
    """ASGI middleware applying :func:`refusal` to every HTTP request (403 with the reason)."""

    def __init__(self, app: ASGIApp, open_mode: Callable[[], bool]) -> None:
        self.app = app
        self.open_mode = open_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            reason = refusal(scope["method"], headers.get("host", ""), headers.get("origin"),
                             self.open_mode)
            if reason is not None:
                await JSONResponse({"detail": reason}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
