"""Fixtures for the studio tests: a tiny parser checkpoint, built once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.webapp.helpers import write_tiny_parser


@pytest.fixture(scope="session")
def tiny_parser(tmp_path_factory) -> Path:
    return write_tiny_parser(tmp_path_factory.mktemp("parser") / "tiny.pt")
