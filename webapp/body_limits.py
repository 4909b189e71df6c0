"""Request bodies capped before they are read: 413 with the limit, nothing spooled or stored.

A body that declares its length (``Content-Length``) above the limit of its route is refused
before a byte of it is read. A body without a declared length (chunked) is read up to the
limit and refused as soon as it goes past it. Limits (bytes) per route:

* ``POST /api/images`` (an image upload): ``ServeOptions.max_upload_bytes``;
* ``PUT /api/images/{id}/annotation`` (a label-map PNG): ``ServeOptions.max_label_bytes``;
* any other ``/api`` request: :data:`OTHER_API_BYTES` (JSON prompts and comments).

The UI's own traffic (Gradio, outside ``/api``) is left to Gradio.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

OTHER_API_BYTES = 1 * 2**20
ANNOTATION_PATH = re.compile(r"^/api/images/[^/]+/annotation/?$")


@dataclass(frozen=True)
class BodyLimits:
    """Largest request bodies in bytes, by kind."""

    upload: int
    label_map: int
    other: int = OTHER_API_BYTES

    def for_request(self, method: str, path: str) -> int | None:
        """The limit of a request; ``None`` outside ``/api``."""
        if not path.startswith("/api"):
            return None
        if method == "POST" and path.rstrip("/") == "/api/images":
            return self.upload
        if method == "PUT" and ANNOTATION_PATH.match(path):
            return self.label_map
        return self.other


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": f"request body larger than the limit of {limit:,} bytes "
                                   f"({limit / 2**20:.1f} MiB)"}, status_code=413)


class BodyLimitGuard:
    """ASGI middleware applying :class:`BodyLimits` (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = (self.limits.for_request(scope["method"], scope["path"])
                 if scope["type"] == "http" else None)
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await _too_large(limit)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        messages = await _read_up_to(receive, limit)
        if messages is None:
            await _too_large(limit)(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)


async def _read_up_to(receive: Receive, limit: int) -> list[Message] | None:
    """The body messages of a request of undeclared length, or ``None`` once past ``limit``."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then the real one (disconnects)."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()
    return replayed
