"""The editor's static files (``webapp/static/``), revalidated on every load so that an
upgraded studio never runs a stale module next to a fresh one."""
from __future__ import annotations

from starlette.staticfiles import StaticFiles
from starlette.types import Scope


class RevalidatedStaticFiles(StaticFiles):
    """:class:`StaticFiles` with ``Cache-Control: no-cache`` (a 304 when unchanged)."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200):
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        return response


__all__ = ["RevalidatedStaticFiles"]
