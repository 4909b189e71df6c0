"""Background jobs over the REST API: ``GET /api/jobs`` (newest first) and ``GET /api/jobs/{id}``.

``POST /api/train`` answers 202 ``{"job": id}``; a client polls ``GET /api/jobs/{id}`` until
``state`` is ``succeeded`` (``model_version`` names the version it published) or ``failed``
(``error`` says why). Reading needs the ``view`` role.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from core.errors import FacetError
from db.jobs import JobInfo, job_info, page_jobs
from webapp.actions import NotFound
from webapp.api import JobId, StudioDep, Text, Who, small_number

router = APIRouter(prefix="/api")

PARAM_CHARS = 200
"""A job parameter longer than this (as text) is cut short in the summary."""


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def params_summary(params: dict[str, Any] | None) -> dict[str, Any]:
    """The job's parameters: numbers, booleans and short strings as they are; anything longer
    or nested as text cut to :data:`PARAM_CHARS` characters."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None or isinstance(value, (bool, int, float)):
            out[str(key)] = value
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out[str(key)] = text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 1] + "…"
    return out


def job_item(info: JobInfo) -> dict:
    job = info.job
    item = {"id": job.id, "kind": job.kind, "state": job.state.value,
            "progress": job.progress, "message": job.message, "error": job.error,
            "params": params_summary(job.params), "created_by": info.created_by,
            "created_at": _time(job.created_at), "started_at": _time(job.started_at),
            "finished_at": _time(job.finished_at), "updated_at": _time(job.updated_at),
            "model_version": info.model_version_id}
    if info.points is not None:
        last = info.last_point
        item["points"] = info.points
        item["last_point"] = None if last is None else {
            "step": last.step, "values": last.values, "at": _time(last.created_at)}
    return item


@router.get("/jobs")
def jobs(studio: StudioDep, who: Who, kind: Text | None = None, state: str | None = None,
         limit: int = 100, cursor: str | None = None) -> dict:
    """Newest first: ``{"items", "total", "next"}``; pass ``next`` back as ``cursor``."""
    who.require("view")
    try:
        before = None if cursor is None else small_number(cursor)
        if cursor is not None and before is None:
            raise FacetError(f"bad cursor {cursor!r}: pass back the 'next' of the previous page")
        with studio.session() as session:
            page = page_jobs(session, kind, state, limit, before)
            items = [job_item(info) for info in page.items]
    except FacetError as err:  # an unknown state, a bad limit or cursor
        raise HTTPException(422, str(err)) from None
    return {"items": items, "total": page.total,
            "next": None if page.next is None else str(page.next)}


@router.get("/jobs/{job_id}")
def job(job_id: JobId, studio: StudioDep, who: Who) -> dict:
    """One job with its progress, logged steps (``points``, ``last_point``) and, when it
    failed, the reason (``error``)."""
    who.require("view")
    with studio.session() as session:
        info = job_info(session, job_id)
        if info is None:
            raise NotFound(f"no job with id {job_id}")
        return job_item(info)


__all__ = ["router"]
