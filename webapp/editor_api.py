"""The REST routes of the browser-side label-map editor, under ``/api`` beside :mod:`webapp.api`.

The editor paints in the browser and talks to the server only to load and save: its config
(classes, colours, keys, SAM), an opened image (start label map as a base64 PNG, history,
lease), the next image of the queue, an image's revisions, and restoring one of them. Saving
is :mod:`webapp.api`'s ``PUT /api/images/{id}/annotation``. Same users, roles, ``If-Match``
and 409 rules as there; each route is an adapter around a use case of :mod:`webapp.actions`.

Times are ISO-8601 in UTC with an explicit offset (``2024-05-01T12:00:00+00:00``).
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from core.imageio import encode_label_png
from db.revisions import history
from webapp import actions
from webapp.actions import ANY_REVISION, image_in
from webapp.api import DbId, ImageId, StudioDep, Who, _etag, parse_if_match
from webapp.records import OpenedImage, RevisionInfo, VersionInfo
from webapp.sam_service import NOT_CONFIGURED
from webapp.studio import Studio
from webapp.class_keys import shortcut

router = APIRouter(prefix="/api")


class NextRequest(BaseModel):
    """``skipped``: image ids this user passed over; ``release``: an image to give up first."""

    skipped: list[DbId] = Field(default_factory=list)
    release: DbId | None = None


class RestoreRequest(BaseModel):
    """The main-line revision number to copy as a new draft."""

    revision: DbId


# ---------------------------------------------------------------- rendering
def _iso(moment: datetime | None) -> str | None:
    """A naive UTC time (as stored) → ISO-8601 with ``+00:00``, so browsers do not read it as
    local time."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


def revision_json(rev: RevisionInfo) -> dict[str, Any]:
    """One history row; ``revision`` is None for a draft kept after a conflict."""
    return {"id": rev.id, "revision": rev.number, "state": rev.state, "origin": rev.origin,
            "author": rev.author, "created_at": _iso(rev.created_at), "comment": rev.comment,
            "model_version_id": rev.model_version_id}


def version_json(version: VersionInfo | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"id": version.id, "mean_f1": version.mean_f1, "num_labels": version.num_labels,
            "describe": version.describe()}


def opened_json(opened: OpenedImage, studio: Studio) -> dict[str, Any]:
    """Everything the editor needs for one image. ``labels_png``: base64 of the start label map
    (``label_height x label_width`` class ids, single-channel PNG); ``width``/``height``: the
    original image's pixels."""
    start = opened.start
    label_h, label_w = start.labels.shape
    sx, sy = opened.scale
    return {
        "id": opened.image_id, "filename": opened.filename,
        "width": opened.size[0], "height": opened.size[1],
        "label_width": label_w, "label_height": label_h, "scale": [sx, sy],
        "base_revision": start.base_revision,
        "start": {"source": start.source,
                  "revision": revision_json(start.revision) if start.revision else None,
                  "version": version_json(start.version)},
        "active": version_json(opened.active), "sam_ready": opened.sam_ready,
        "held_until": _iso(opened.held_until),
        "history": [revision_json(rev) for rev in opened.history],
        "labels_png": base64.b64encode(encode_label_png(start.labels)).decode("ascii"),
        "image_url": f"/api/images/{opened.image_id}/image",
    }


def _classes(studio: Studio) -> list[dict[str, Any]]:
    labels = studio.labels
    colors = labels.hex_colors()
    return [{"id": i, "name": labels.names[i], "label": labels.human_name(i), "color": colors[i],
             "key": shortcut(labels, i)} for i in range(labels.num_classes)]


# ---------------------------------------------------------------- routes
@router.get("/editor/config")
def editor_config(studio: StudioDep, who: Who) -> dict[str, Any]:
    who.require("view")
    return {"user": who.name, "role": who.role.value, "can_annotate": who.can("annotate"),
            "classes": _classes(studio),
            "sam": {"model": studio.sam.model.key} if studio.sam else None,
            "sam_hint": None if studio.sam else NOT_CONFIGURED,
            "max_label_bytes": studio.options.max_label_bytes}


@router.get("/images/{image_id}/open")
def open_route(image_id: ImageId, studio: StudioDep, who: Who) -> dict[str, Any]:
    return opened_json(actions.open_image(studio, who, image_id), studio)


@router.post("/queue/next")
def next_route(studio: StudioDep, who: Who, body: NextRequest | None = None) -> dict[str, Any]:
    body = body or NextRequest()
    opened = actions.next_image(studio, who, tuple(body.skipped), body.release)
    return {"image": opened_json(opened, studio) if opened is not None else None}


@router.get("/images/{image_id}/revisions")
def revisions_route(image_id: ImageId, studio: StudioDep, who: Who) -> list[dict[str, Any]]:
    who.require("view")
    with studio.session() as session:
        image_in(session, image_id)
        return [revision_json(RevisionInfo.of(rev)) for rev in history(session, image_id)]


@router.post("/images/{image_id}/restore")
def restore_route(image_id: ImageId, body: RestoreRequest, studio: StudioDep, who: Who,
                  if_match: Annotated[str | None, Header()] = None) -> JSONResponse:
    base = parse_if_match(if_match)
    if base == ANY_REVISION:
        raise HTTPException(422, "If-Match: * is not allowed for a restore; name the revision "
                                 "you are looking at, like \"3\"")
    outcome = actions.restore(studio, who, image_id, body.revision, base)
    if outcome.conflict:
        return JSONResponse(status_code=409, content={
            "detail": f"stale revision: you started from {base if base is not None else 'none'}, "
                      f"the image is now at revision {outcome.current}; the restored copy was "
                      f"kept as draft {outcome.row_id}, off the main line",
            "current_revision": outcome.current})
    return JSONResponse({"revision": outcome.number}, headers={"ETag": _etag(outcome.number)})


__all__ = ["opened_json", "revision_json", "router", "version_json"]
