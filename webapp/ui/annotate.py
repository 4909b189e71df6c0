"""The Annotate view: the browser-side label-map editor (``webapp/static/``).

The editor holds the label map in the page (one class id per pixel, drawn through the
palette) and talks to the REST API only to load, save and ask SAM (``webapp/editor_api.py``,
with the page's login cookie). Gradio's part is a placeholder that the editor mounts into, and
the ``<head>`` tags that load it; no Python runs while an annotator paints.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import gradio as gr

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_URL = "/static/facet"
ROOT_ID = "facet-editor-root"


def asset_version() -> str:
    """A short digest of the editor's files: a new release is never served from a stale cache."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def head_tags() -> str:
    """``<link>`` and ``<script type="module">`` that load the editor once per page."""
    v = asset_version()
    return (f'<link rel="stylesheet" href="{STATIC_URL}/editor.css?v={v}">'
            f'<script type="module" src="{STATIC_URL}/editor.js?v={v}"></script>')


class AnnotateView:
    """The tab's content: the editor's placeholder (the editor wires itself in the browser)."""

    def build(self) -> None:
        gr.HTML(f'<div id="{ROOT_ID}"><noscript>The editor needs JavaScript.</noscript></div>',
                elem_id="facet-annotate", padding=False)


__all__ = ["AnnotateView", "STATIC_DIR", "STATIC_URL", "head_tags"]
