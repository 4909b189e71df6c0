"""Admin routes of the REST API (same users, same error handling as :mod:`webapp.api`).

``DELETE /api/images/{id}`` deletes an image with all its data (:func:`webapp.actions.delete_image`):
200 with the deletion record, 403 below the admin role, 404 for an image that does not exist
(or no longer does). The reason comes as ``?reason=…`` or a JSON body ``{"reason": "…"}``.
"""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from db.deletion import KEPT_NOTE, MAX_REASON
from webapp import actions
from webapp.api import ImageId, StudioDep, Text, Who

router = APIRouter(prefix="/api")


class DeleteRequest(BaseModel):
    """Why the image is deleted (optional; kept in the deletion record — no personal data)."""

    reason: Text | None = Field(default=None, max_length=MAX_REASON)


@router.delete("/images/{image_id}")
async def delete_image(image_id: ImageId, studio: StudioDep, who: Who,
                       reason: Annotated[Text | None, Query(max_length=MAX_REASON)] = None,
                       body: DeleteRequest | None = None) -> dict:
    """Delete the image, its revisions, predictions, SAM embeddings, queue state and files;
    answers the deletion record (who, when, why, how many rows and files went)."""
    who.require("delete")
    why = body.reason if body is not None and body.reason is not None else reason
    record = await run_in_threadpool(actions.delete_image, studio, who, image_id, why)
    return {**record.as_dict(), "removed": record.removed_line(), "kept": KEPT_NOTE}


__all__ = ["router"]
