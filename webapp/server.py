"""One FastAPI app: the REST API under /api and the Gradio studio at /, same users.

:func:`build_app` composes it (tests call this); :func:`serve` also checks the host, fills a
demo database, registers a parser checkpoint, and runs uvicorn until interrupted.

A database that is busy beyond the busy timeout or cannot be reached is answered 503 with
``Retry-After`` and a JSON ``detail`` saying so (:class:`DatabaseFaultGuard`; the UI's login:
:func:`ui_login`; the words: :mod:`webapp.db_faults`), never a 500.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

import gradio as gr
import uvicorn
from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import FacetError
from db.settings import Settings
from webapp.admin_api import router as admin_router
from webapp.api import install_error_handlers, router
from webapp.body_limits import BodyLimitGuard, BodyLimits
from webapp.db_faults import database_fault_answer
from webapp.demo import fill_demo, register_parser, register_prior, train_first_model
from webapp.editor_api import router as editor_router
from webapp.guards import SameOriginGuard
from webapp.jobs_api import router as jobs_router
from webapp.options import ServeOptions, is_loopback
from webapp.ports import TaskQueue
from webapp.static_files import RevalidatedStaticFiles
from webapp.studio import Studio
from webapp.ui.annotate import STATIC_DIR, STATIC_URL
from webapp.ui.blocks import build_blocks, css, head

OPEN_MODE_BANNER = """
************************************************************************
  NO USERS IN THE DATABASE: the studio is OPEN to anyone on this machine
  (loopback only, no login). Add users to require a login:
      python app.py users add NAME --role admin
************************************************************************"""


def check_host(studio: Studio, host: str) -> bool:
    """True when running open (no users). Raises :class:`FacetError` for a non-loopback host
    without users: an open studio is never exposed to the network."""
    open_mode = studio.auth.open_mode()
    if open_mode and not is_loopback(host):
        raise FacetError(f"refusing to serve on {host} without users: anyone on the network "
                         "could edit everything. Add a user first (python app.py users add NAME "
                         "--role admin) or use --host 127.0.0.1")
    return open_mode


class DatabaseFaultGuard:
    """ASGI middleware, outermost: a busy or unreachable database raised anywhere inside (a
    route, a dependency, the other middleware) becomes the 503 of
    :func:`database_fault_answer`. Other errors, and any error after the answer started
    (Gradio's own routes answer their errors themselves), pass on unchanged.

    A middleware rather than an exception handler: the open-mode check of
    :class:`~webapp.guards.SameOriginGuard` reads the database before any route runs, and a
    handler would turn errors of the mounted Gradio app into "response already started" ones."""

    def __init__(self, app: ASGIApp, busy_timeout_ms: int) -> None:
        self.app = app
        self.busy_timeout_ms = busy_timeout_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as err:
            answer = None if started else database_fault_answer(
                err, self.busy_timeout_ms, f"{scope.get('method')} {scope.get('path')}")
            if answer is None:
                raise
            await answer.response()(scope, receive, send)


def ui_login(studio: Studio) -> Callable[[str, str], bool]:
    """Gradio's login check (:meth:`webapp.auth.Auth.gradio_login`); a busy or unreachable
    database is a 503 with the same words as the API's, not a 500 from inside Gradio."""
    def login(username: str, password: str) -> bool:
        try:
            return studio.auth.gradio_login(username, password)
        except Exception as err:
            answer = database_fault_answer(err, studio.settings.db_busy_timeout_ms, "UI login")
            if answer is None:
                raise
            raise HTTPException(503, answer.detail,
                                headers={"Retry-After": str(answer.retry_after_s)}) from None
    return login


def build_app(studio: Studio) -> FastAPI:
    """The FastAPI app: ``/api/...`` routes first, then the Gradio UI mounted at ``/``.

    The UI asks for a login when the database has users at build time; without users it is
    open (and :func:`check_host` keeps it on loopback).
    """
    app = FastAPI(title="Facet", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  redoc_url=None)
    app.state.studio = studio
    app.add_middleware(SameOriginGuard, open_mode=studio.auth.open_mode)
    app.add_middleware(BodyLimitGuard, limits=BodyLimits(studio.options.max_upload_bytes,
                                                         studio.options.max_label_bytes))
    app.add_middleware(DatabaseFaultGuard, busy_timeout_ms=studio.settings.db_busy_timeout_ms)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(editor_router)
    app.include_router(admin_router)
    app.include_router(jobs_router)
    app.mount(STATIC_URL, RevalidatedStaticFiles(directory=STATIC_DIR), name="facet-static")
    auth = None if studio.auth.open_mode() else ui_login(studio)
    blocks = build_blocks(studio)
    blocks.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(app, blocks, path="", auth=auth,
                               auth_message="Facet: log in with your studio account.",
                               css=css(studio), head=head(studio), footer_links=[],
                               show_error=True)


def serve(settings: Settings, options: ServeOptions, tasks: TaskQueue | None) -> None:
    """Build the studio and run it until interrupted (the ``serve`` command)."""
    from model.devices import set_torch_threads

    set_torch_threads()  # this process's SAM clicks and --no-worker predictions: every core, at most 8
    studio = Studio.create(settings, options, tasks)
    open_mode = check_host(studio, options.host)
    if options.parser_checkpoint is not None:
        print(register_parser(studio, options.parser_checkpoint), file=sys.stderr)
    elif options.prior is not None:
        print(register_prior(studio, options.prior), file=sys.stderr)
    if options.demo:
        added = fill_demo(studio, options.demo, options.demo_size)
        print(f"demo: added {added} synthetic faces" if added else
              "demo: the database already has images; nothing added", file=sys.stderr)
        if added:
            print(train_first_model(studio), file=sys.stderr)
    if open_mode:
        print(OPEN_MODE_BANNER, file=sys.stderr)
    if studio.sam is None:
        print("SAM: off (pass --sam-checkpoint to enable click-to-segment)", file=sys.stderr)
    else:
        print(f"SAM: {studio.sam.model.key}", file=sys.stderr)
    if tasks is None:
        print("worker: none; pre-annotations and SAM embeddings are computed on first need, "
              "training is unavailable", file=sys.stderr)
    app = build_app(studio)
    print(f"Facet studio on http://{options.host}:{options.port}/ (API under /api)", file=sys.stderr)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning")
