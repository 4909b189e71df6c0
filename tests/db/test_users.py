"""Users and passwords: salted scrypt hashes, unique names, roles, authentication."""
from __future__ import annotations

import pytest

from core.errors import FacetError
from db.engine import session_scope
from db.models import Role
from db.passwords import hash_password, verify_password
from db.users import authenticate, count_users, create_user, get_user_by_name, list_users


def test_hash_is_salted_and_never_the_password():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert "correct horse" not in first and first != second
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("", first)
    with pytest.raises(ValueError, match="unrecognised"):
        verify_password("x", "plain-text-password")


def test_create_and_authenticate(sessions):
    with session_scope(sessions) as s:
        create_user(s, "ann", "pw-ann", "annotator")
        create_user(s, " rev ", "pw-rev", Role.reviewer)
    with session_scope(sessions) as s:
        assert count_users(s) == 2
        assert [(u.name, u.role) for u in list_users(s)] == [("ann", Role.annotator),
                                                            ("rev", Role.reviewer)]
        assert get_user_by_name(s, "ann").password_hash != "pw-ann"
        assert authenticate(s, "ann", "pw-ann").name == "ann"
        assert authenticate(s, "ann", "pw-rev") is None
        assert authenticate(s, "nobody", "pw-ann") is None
        assert authenticate(s, "rev", "pw-rev").role.at_least(Role.annotator)


@pytest.mark.parametrize("name, password, role, message", [
    ("ann", "other", "annotator", "already exists"),
    ("bob", "", "annotator", "empty password"),
    ("bob", "pw", "boss", "unknown role 'boss'"),
    ("  ", "pw", "admin", "cannot be empty"),
    ("a:b", "pw", "admin", "may not contain ':'"),
])
def test_bad_users_are_refused_and_nothing_changes(sessions, name, password, role, message):
    with session_scope(sessions) as s:
        create_user(s, "ann", "pw", "annotator")
    with session_scope(sessions) as s:
        with pytest.raises(FacetError, match=message):
            create_user(s, name, password, role)
    with session_scope(sessions) as s:
        assert [u.name for u in list_users(s)] == ["ann"]
