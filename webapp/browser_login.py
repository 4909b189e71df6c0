"""The studio login a browser carries: who is behind a request that the UI's own page makes.

The UI's login form is Gradio's (``mount_gradio_app(auth=…)``): it sets an access-token cookie
and keeps token → user name in the Gradio app. Requests that the page makes by itself — to
``/api`` with ``fetch``, or to a component's server functions — carry that cookie but no HTTP
Basic header, and Gradio does not tell server functions who is logged in. This module reads
the cookie the way Gradio's own ``login_check`` does, so those calls act as the logged-in user
with the same roles (:class:`webapp.auth.Actor`). Cross-site writes stay refused by
:mod:`webapp.guards`, whatever the cookie.

It reads two attributes of Gradio's app (``cookie_id``, ``tokens``; checked on Gradio 6.31),
and says so loudly in the tests if a Gradio upgrade moves them.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection
from starlette.routing import Mount


def _gradio_app(app: Any) -> Any | None:
    """The mounted Gradio app: ``app`` itself (a request routed into it), or the app mounted
    in ``app``'s routes (a request to the API beside it)."""
    if hasattr(app, "tokens") and hasattr(app, "cookie_id"):
        return app
    for route in getattr(app, "routes", ()):
        if isinstance(route, Mount) and hasattr(route.app, "tokens"):
            return route.app
    return None


def logged_in_user(connection: HTTPConnection) -> str | None:
    """The user name behind the UI's login cookie on ``connection``, or ``None`` (no cookie,
    an expired or unknown token, or no login form because the studio runs open)."""
    app = _gradio_app(connection.scope.get("app"))
    if app is None:
        return None
    cookies = connection.cookies
    token = (cookies.get(f"access-token-{app.cookie_id}")
             or cookies.get(f"access-token-unsecure-{app.cookie_id}"))
    return app.tokens.get(token) if token else None
