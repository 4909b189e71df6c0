"""`users passwd NAME`: a new password from stdin; the old one stops working at once, also for
the studio's login (whose verified-password cache is keyed to the stored hash)."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from db.engine import session_scope
from db.users import authenticate, create_user, set_password
from tests.app_cli import run_app
from webapp.auth import Auth


@pytest.mark.slow
def test_users_passwd_reads_the_new_password_from_stdin(settings, sessions):
    with session_scope(sessions) as s:
        create_user(s, "alice", "old pass", "reviewer")
    ok = run_app("users", "passwd", "alice", settings=settings, stdin="new pass\n")
    assert ok.returncode == 0, ok.stderr
    assert "changed the password of 'alice'" in ok.stdout
    unknown = run_app("users", "passwd", "bob", settings=settings, stdin="pw\n")
    empty = run_app("users", "passwd", "alice", settings=settings, stdin="\n")
    for run, reason in ((unknown, "no user named 'bob'"), (empty, "empty password")):
        assert run.returncode == 2, run.stderr
        assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ")
        assert reason in run.stderr
    with session_scope(sessions) as s:
        assert authenticate(s, "alice", "old pass") is None
        assert authenticate(s, "alice", "new pass") is not None


def test_old_password_stops_working_at_once_despite_the_login_cache(sessions):
    with session_scope(sessions) as s:
        create_user(s, "ann", "old pass", "annotator")
    auth = Auth(sessions)
    assert auth.gradio_login("ann", "old pass")
    assert auth.check_password("ann", "old pass") is not None     # now served from the cache
    with session_scope(sessions) as s:
        set_password(s, "ann", "new pass")
    assert auth.check_password("ann", "old pass") is None
    assert not auth.gradio_login("ann", "old pass")
    assert auth.gradio_login("ann", "new pass")


def test_set_password_refuses_unknown_users_and_empty_passwords(sessions):
    with session_scope(sessions) as s:
        create_user(s, "ann", "pw", "annotator")
        with pytest.raises(FacetError, match="no user named 'bob'"):
            set_password(s, "bob", "x")
        with pytest.raises(FacetError, match="empty password"):
            set_password(s, "ann", "")
