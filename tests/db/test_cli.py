"""The db commands as a user runs them: `.venv/bin/python app.py ...` in a subprocess."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from db.database import current_revision, head_revision
from db.engine import session_scope
from db.users import authenticate, list_users
from tests.app_cli import run_app
from tests.db.test_stats import known_dataset

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow




def test_users_add_reads_the_password_from_stdin_and_refuses_bad_input(settings, sessions):
    ok = run_app("users", "add", "alice", "--role", "reviewer", settings=settings,
                 stdin="s3cret pass\n")
    assert ok.returncode == 0, ok.stderr
    bad_role = run_app("users", "add", "bob", "--role", "boss", settings=settings, stdin="pw\n")
    empty = run_app("users", "add", "bob", "--role", "admin", settings=settings, stdin="\n")
    for run, reason in ((bad_role, "unknown role 'boss'"), (empty, "empty password")):
        assert run.returncode == 2
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
        assert reason in run.stderr
    listed = run_app("users", "list", settings=settings)
    assert listed.returncode == 0 and listed.stdout.split()[:2] == ["alice", "reviewer"]
    with session_scope(sessions) as s:
        assert [u.name for u in list_users(s)] == ["alice"]
        assert authenticate(s, "alice", "s3cret pass") is not None


def test_stats_json_and_db_upgrade_on_a_fresh_data_dir(tmp_path, settings, sessions):
    known_dataset(sessions)
    run = run_app("stats", "--json", settings=settings)
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert (stats["images"], stats["annotated"], stats["approved"]) == (5, 4, 1)
    assert stats["active_mean_f1"] == 0.7

    fresh = tmp_path / "fresh"
    up = run_app("db", "upgrade", "--data-dir", str(fresh))
    assert up.returncode == 0, up.stderr
    assert current_revision(f"sqlite:///{fresh / 'facet.db'}") == head_revision()
