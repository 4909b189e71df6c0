"""Users: names, password hashes and roles (annotator < reviewer < admin)."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import FacetError
from db.models import Role, User, unstorable
from db.passwords import dummy_verify, hash_password, verify_password

MAX_NAME = 64


def parse_role(role: Role | str) -> Role:
    """``Role`` from its name; :class:`FacetError` listing the choices otherwise."""
    if isinstance(role, Role):
        return role
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise FacetError(f"unknown role {role!r} (choose one of: {choices})") from None


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise FacetError("a user name cannot be empty")
    if len(name) > MAX_NAME:
        raise FacetError(f"user name is {len(name)} characters long (at most {MAX_NAME})")
    if ":" in name or any(not ch.isprintable() for ch in name):
        raise FacetError(f"user name {name!r} may not contain ':' or control characters")
    return name


def get_user_by_name(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name.strip()))


def create_user(session: Session, name: str, password: str, role: Role | str) -> User:
    """Add a user (flushed, not committed). Names are unique; passwords must not be empty."""
    name = _check_name(name)
    role = parse_role(role)
    if not password:
        raise FacetError("refusing an empty password")
    if get_user_by_name(session, name) is not None:
        raise FacetError(f"user {name!r} already exists")
    user = User(name=name, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, name: str, password: str) -> User:
    """Replace a user's password; :class:`FacetError` for an unknown user or empty password."""
    user = get_user_by_name(session, name)
    if user is None:
        raise FacetError(f"no user named {name!r}")
    if not password:
        raise FacetError("refusing an empty password")
    user.password_hash = hash_password(password)
    session.flush()
    return user


def authenticate(session: Session, name: str, password: str) -> User | None:
    """The user when ``name`` and ``password`` match, else ``None`` (same cost either way)."""
    user = get_user_by_name(session, name) if name and unstorable(name) is None else None
    if user is None:
        dummy_verify(password)
        return None
    return user if verify_password(password, user.password_hash) else None


def list_users(session: Session) -> list[User]:
    """All users, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count(User.id))) or 0)
