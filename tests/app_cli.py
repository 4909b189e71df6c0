"""Run ``app.py`` the way a user does, in a subprocess, for the CLI tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from db.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def cli_env(settings: Settings | None = None) -> dict[str, str]:
    """Our environment without any ``FACET_*`` variable, plus, with ``settings``, its data dir
    and database and queue URLs (so a PostgreSQL test's command opens that database)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACET_")}
    if settings is not None:
        env.update(FACET_DATA_DIR=str(settings.data_dir), FACET_DATABASE_URL=settings.database_url,
                   FACET_QUEUE_URL=settings.queue_url)
    return env


def run_app(*args: str, settings: Settings | None = None, stdin: str = "",
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``python app.py ARGS`` from the repository root; output captured as text."""
    return subprocess.run([sys.executable, "app.py", *args], cwd=REPO, input=stdin,
                          env=cli_env(settings), capture_output=True, text=True, timeout=timeout)
