"""The REST API under ``/api`` (docs/ARCHITECTURE.md, "REST API"), beside the UI, with the same
users (HTTP Basic).

Each route is an adapter: parse the request, call a use case of :mod:`webapp.actions` (or a
read-only query), render the answer. The studio comes from ``request.app.state.studio``
(:func:`webapp.server.build_app` puts it there). Label maps travel as single-channel PNGs at
the image's label size; a save names the revision it started from in ``If-Match`` (absent =
"there was none") and gets 409 when that is stale.
"""
import json
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import (APIRouter, Depends, File, Header, HTTPException, Query, Request, Response,
                     UploadFile)
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from core.errors import FacetError
from core.imageio import BadImageError, encode_label_png
from db.exporter import export_dataset
from db.images import ImageFilter, ImageStatus, image_file, page_images, parse_time
from db.models import MAX_ID, RevisionState, unstorable
from db.revisions import latest_revision
from db.versions import list_versions
from model.sam import CANDIDATES, SamError
from webapp import actions
from webapp.actions import ANY_REVISION, NotFound, NoWorkerError, TrainingPendingError, image_in
from webapp.auth import AccessDenied, Actor
from webapp.browser_login import logged_in_user
from webapp.sam_service import NOT_CONFIGURED, EmbeddingPending
from webapp.studio import Studio

PNG = "image/png"
SAM_RETRY_S = 2
"""Seconds a client waits before asking SAM again while an embedding is pending."""
_MEDIA = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": PNG, ".webp": "image/webp",
          ".bmp": "image/bmp"}


def _id_path(what: str) -> Any:
    """An id in the path, checked against ``1..``:data:`db.models.MAX_ID` (422 otherwise)
    before it reaches the database, where a larger one is a driver error."""
    return PathParam(ge=1, le=MAX_ID, description=f"{what} (1..{MAX_ID})")


ImageId = Annotated[int, _id_path("an image id")]
VersionId = Annotated[int, _id_path("a model version id")]
JobId = Annotated[int, _id_path("a job id")]
DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id or revision number in a JSON body (1..:data:`MAX_ID`)."""

MAX_FILENAME = 255
"""Longest name of an uploaded file, in characters (what file systems allow)."""


def _storable(text: str) -> str:
    problem = unstorable(text)
    if problem is not None:
        raise ValueError(problem)
    return text


Text = Annotated[str, AfterValidator(_storable)]
"""A string from a request that is stored or compared in the database (422 when it cannot be)."""


class SamPrompt(BaseModel):
    """Clicks ``[[x, y, 1|0], …]`` and an optional box ``[x0, y0, x1, y1]``, image pixels;
    ``refine``: the ``X-Sam-Token`` of the previous answer on the same part (SAM starts from
    that mask); ``candidate``: which of a lone click's three masks (default: the best-scored)."""

    points: list[list[float]] = Field(default_factory=list)
    box: list[float] | None = None
    refine: str | None = Field(None, max_length=64)
    candidate: int | None = Field(None, ge=0, le=2)


class Decision(BaseModel):
    """An optional comment on a submit, approval or rejection."""

    comment: Text | None = None


def studio_of(request: Request) -> Studio:
    return request.app.state.studio


def actor_of(request: Request, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """HTTP Basic credentials, or else the UI's login cookie (a page of the studio calling
    its own API), or else the open mode's local admin."""
    client = request.client.host if request.client else None
    auth = studio_of(request).auth
    if authorization is None and (username := logged_in_user(request)) is not None:
        return auth.from_username(username, client)
    return auth.from_basic(authorization, client)


StudioDep = Annotated[Studio, Depends(studio_of)]
Who = Annotated[Actor, Depends(actor_of)]
router = APIRouter(prefix="/api")


def _etag(number: int) -> str:
    return f'"{number}"'


def small_number(text: str) -> int | None:
    """``text`` as a number in ``0..``:data:`db.models.MAX_ID` when it is written in ASCII
    digits, else ``None`` (``str.isdigit`` alone lets in '²', which ``int`` refuses, and
    numbers the database cannot compare with)."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) <= len(str(MAX_ID)) and int(digits) <= MAX_ID else None


def parse_if_match(value: str | None) -> int | str | None:
    """``If-Match: "3"`` (or ``3``) → 3; ``*`` → :data:`webapp.actions.ANY_REVISION`; absent →
    None; anything else (other digits than ASCII ones, a number past :data:`MAX_ID`) → 422."""
    if value is None or not value.strip():
        return None
    if value.strip() == ANY_REVISION:
        return ANY_REVISION
    number = small_number(value.strip().removeprefix("W/").strip('"'))
    if number is None:
        raise HTTPException(422, f"If-Match must be a revision number like \"3\", got {value!r}")
    return number


def _comment(body: Decision | None) -> str | None:
    return body.comment if body else None


@router.get("/health")
def health(studio: StudioDep) -> dict:
    active = studio.predictions.active()
    return {"status": "ok", "model_version": active.id if active else None,
            "sam": studio.sam.model.key if studio.sam else None,
            "worker": studio.tasks is not None}


def _image_item(s: ImageStatus) -> dict:
    return {"id": s.image.id, "filename": s.image.source_name, "width": s.image.width,
            "height": s.image.height, "label_width": s.image.label_width,
            "label_height": s.image.label_height, "status": s.status, "revision": s.revision}


@router.get("/images")
def images(studio: StudioDep, who: Who, status: str | None = None, q: Text | None = None,
           labelled_by: Text | None = None, updated_since: str | None = None,
           sort: str = "id", limit: int = 100, cursor: str | None = None) -> dict:
    """A page of images: ``{"items", "total", "next"}``; pass ``next`` back as ``cursor`` (with
    the same sort and filters) for the page after. Bad values → 422 naming the allowed ones."""
    who.require("view")
    try:
        since = parse_time(updated_since) if updated_since else None
        with studio.session() as session:
            page = page_images(session, ImageFilter(status, q, labelled_by, since), sort,
                               limit, cursor)
            items = [_image_item(s) for s in page.items]
    except FacetError as err:  # a bad filter, sort, limit or cursor
        raise HTTPException(422, str(err)) from None
    return {"items": items, "total": page.total, "next": page.next}


@router.post("/images", status_code=201)
async def upload(studio: StudioDep, who: Who, response: Response,
                 file: UploadFile = File(...)) -> dict:
    who.require("upload")
    limit = studio.options.max_upload_bytes  # the body was capped before (webapp/body_limits.py)
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"file larger than the limit of {limit:,} bytes")
    name = Path(file.filename or "upload").name
    problem = unstorable(name) or (f"must be at most {MAX_FILENAME} characters long"
                                   if len(name) > MAX_FILENAME else None)
    if problem is not None:
        raise HTTPException(422, f"bad file name {name[:80]!r}: it {problem}")
    # decoding and the database write run off the event loop
    added = await run_in_threadpool(actions.add_image, studio, who, data, name)
    if not added.created:
        response.status_code = 200
    return {"id": added.id, "filename": added.filename, "width": added.width,
            "height": added.height, "created": added.created}


@router.get("/images/{image_id}/image")
def original(image_id: ImageId, studio: StudioDep, who: Who) -> FileResponse:
    who.require("view")
    with studio.session() as session:
        path = image_file(studio.settings, image_in(session, image_id))
    return FileResponse(path, media_type=_MEDIA.get(path.suffix.lower(), "application/octet-stream"))


@router.get("/images/{image_id}/annotation")
def annotation(image_id: ImageId, studio: StudioDep, who: Who) -> Response:
    who.require("view")
    with studio.session() as session:
        image_in(session, image_id)
        rev = latest_revision(session, image_id)
        if rev is None:
            raise HTTPException(404, f"image {image_id} has no annotation yet")
        return Response(rev.label_png, media_type=PNG,
                        headers={"ETag": _etag(rev.revision), "X-Revision-State": rev.state.value})


LABEL_PNG_BODY = {"requestBody": {"required": True, "description": (
    "The label map: a single-channel (mode L) PNG at the image's label size, one class id "
    "per pixel"), "content": {PNG: {"schema": {"type": "string", "format": "binary"}}}}}
"""The PUT's body in the OpenAPI schema (the route reads it raw, so FastAPI cannot infer it)."""


@router.put("/images/{image_id}/annotation", openapi_extra=LABEL_PNG_BODY)
async def put_annotation(image_id: ImageId, request: Request, studio: StudioDep, who: Who,
                         if_match: Annotated[str | None, Header()] = None,
                         state: Annotated[str, Query(pattern="^(draft|submitted)$")] = "draft",
                         ) -> JSONResponse:
    who.require("annotate")
    base = parse_if_match(if_match)
    body = await request.body()
    outcome = await run_in_threadpool(actions.save_labels, studio, who, image_id, body, base,
                                      RevisionState(state))
    if outcome.conflict:
        return JSONResponse(status_code=409, content={
            "detail": f"stale revision: you started from {base if base is not None else 'none'}, "
                      f"the image is now at revision {outcome.current}; your label map was "
                      f"kept as draft {outcome.row_id}",
            "current_revision": outcome.current, "kept_draft_id": outcome.row_id})
    return JSONResponse({"revision": outcome.number}, headers={"ETag": _etag(outcome.number)})


@router.post("/images/{image_id}/submit")
def submit_route(image_id: ImageId, studio: StudioDep, who: Who,
                 decision: Decision | None = None) -> dict:
    decision = actions.submit_labels(studio, who, image_id, _comment(decision))
    return {"revision": decision.revision, "state": decision.state}


@router.post("/images/{image_id}/approve")
def approve_route(image_id: ImageId, studio: StudioDep, who: Who,
                  decision: Decision | None = None) -> dict:
    decision = actions.decide(studio, who, image_id, True, _comment(decision))
    return {"revision": decision.revision, "state": decision.state}


@router.post("/images/{image_id}/reject")
def reject_route(image_id: ImageId, studio: StudioDep, who: Who,
                 decision: Decision | None = None) -> dict:
    decision = actions.decide(studio, who, image_id, False, _comment(decision))
    return {"revision": decision.revision, "state": decision.state}


@router.get("/images/{image_id}/prediction")
def prediction(image_id: ImageId, studio: StudioDep, who: Who) -> Response:
    who.require("view")
    with studio.session() as session:
        pred = studio.predictions.prediction_in(session, image_in(session, image_id))
    headers = {"X-Model-Version": str(pred.version.id) if pred.version else "none",
               "X-Prediction": "cached" if not pred.computed else "computed"}
    if pred.version is None:
        headers["X-Note"] = "no model yet: an empty (all background) map"
    return Response(encode_label_png(pred.labels), media_type=PNG, headers=headers)


@router.post("/images/{image_id}/sam", responses={202: {"description": "embedding pending"}})
def sam(image_id: ImageId, prompt: SamPrompt, studio: StudioDep, who: Who) -> Response:
    """The mask for the prompts (a PNG, 0/255). With a worker, an image whose embedding is not
    cached yet answers 202 at once (the embedding queued first in line; ``Retry-After``)
    instead of running the encoder in the request; without one it is computed here, once."""
    who.require("annotate")
    if studio.sam is None:
        raise HTTPException(503, NOT_CONFIGURED)
    with studio.session() as session:
        image_in(session, image_id)
    try:
        click = studio.sam.click(image_id, prompt.points, prompt.box,
                                 compute=studio.tasks is None, refine=prompt.refine,
                                 candidate=prompt.candidate)
    except EmbeddingPending as err:
        studio.tasks.enqueue_embedding(image_id, urgent=True)
        return JSONResponse(status_code=202, headers={"Retry-After": str(SAM_RETRY_S)},
                            content={"detail": str(err), "pending": True,
                                     "retry_after_s": SAM_RETRY_S})
    found = click.answer
    png = encode_label_png(found.mask.astype("uint8") * 255)
    return Response(png, media_type=PNG, headers={
        "X-Sam-Score": f"{found.score:.4f}", "X-Sam-Token": click.token,
        "X-Sam-Refined": "1" if click.refined else "0",
        "X-Sam-Candidate": "none" if found.candidate is None else str(found.candidate),
        "X-Sam-Candidates": str(CANDIDATES if found.candidate is not None else 1)})


@router.post("/train")
def train(studio: StudioDep, who: Who) -> JSONResponse:
    try:
        job_id = actions.queue_training(studio, who, "api")
    except NoWorkerError as err:
        raise HTTPException(503, str(err)) from None
    except TrainingPendingError as err:
        return JSONResponse(status_code=409, content={"detail": str(err), "job": err.job_id})
    return JSONResponse(status_code=202, content={"job": job_id})


@router.get("/models")
def models(studio: StudioDep, who: Who) -> list[dict]:
    who.require("view")
    with studio.session() as session:
        return [{"id": v.id, "active": v.is_active, "metrics": v.metrics, "num_labels": v.num_labels,
                 "parent_id": v.parent_id, "job_id": v.job_id, "note": v.note,
                 "created_at": v.created_at.isoformat()} for v in list_versions(session)]


@router.post("/models/{version_id}/activate")
def activate_route(version_id: VersionId, studio: StudioDep, who: Who) -> dict:
    actions.activate_version(studio, who, version_id)
    return {"active": version_id}


@router.get("/export")
def export(studio: StudioDep, who: Who,
           status: Annotated[str, Query(pattern="^(approved|submitted|any)$")] = "approved",
           ) -> FileResponse:
    who.require("export")
    tmp = Path(tempfile.mkdtemp(prefix="facet-export-"))
    try:
        with studio.session() as session:
            export_dataset(session, studio.settings, tmp / "celebamask-hq.zip", status=status,
                           as_zip=True, labels=studio.labels)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return FileResponse(tmp / "celebamask-hq.zip", media_type="application/zip",
                        filename="celebamask-hq.zip",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a request that does not fit the schema, ``{"detail": [errors]}``,
    except that an ``input`` JSON cannot carry back (NaN, Infinity, a lone surrogate — all of
    which a JSON body may hold) is left out of its error instead of failing the answer (500)."""
    errors = jsonable_encoder(err.errors())
    for error in errors:
        try:  # what JSONResponse does with it
            json.dumps(error, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ValueError:  # UnicodeEncodeError is one
            error.pop("input", None)
            error.pop("ctx", None)
    return JSONResponse(status_code=422, content={"detail": errors})


def install_error_handlers(app) -> None:
    """Map the studio's exceptions to status codes with the one-line reason as ``detail``."""

    def handler(status_for):
        async def handle(request: Request, err: Exception) -> JSONResponse:
            status = status_for(err)
            headers = {"WWW-Authenticate": 'Basic realm="facet"'} if status == 401 else None
            if getattr(err, "retry_after", None) is not None:
                headers = {"Retry-After": str(err.retry_after)}
            return JSONResponse(status_code=status, content={"detail": str(err)}, headers=headers)
        return handle

    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(AccessDenied, handler(lambda e: e.status))
    app.add_exception_handler(NotFound, handler(lambda e: 404))
    app.add_exception_handler(BadImageError, handler(lambda e: 422))
    app.add_exception_handler(SamError, handler(lambda e: 422))
    # Other FacetErrors on these routes are state conflicts: approving what is not submitted,
    # If-Match naming a revision that does not exist, a decision racing another one.
    app.add_exception_handler(FacetError, handler(lambda e: 409))


__all__ = ["install_error_handlers", "router"]
