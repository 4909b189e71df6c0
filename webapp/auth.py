"""Who is acting, and may they? HTTP Basic for the API, Gradio's login for the UI, same users.

Roles are ordered annotator < reviewer < admin (:class:`db.models.Role`). With no user in the
database the studio runs open on loopback only: every local request acts as the built-in
``local`` admin (``user_id=None``), and nothing from another host gets in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from db.engine import session_scope
from db.models import Role, User
from db.users import authenticate, count_users, get_user_by_name
from webapp.options import is_loopback

LOCAL_NAME = "local"
"""The name the open (no users) mode acts under."""

# What each action needs; the single place that says so (UI and API both use it).
ACTION_ROLES: dict[str, Role] = {
    "view": Role.annotator, "annotate": Role.annotator, "upload": Role.annotator,
    "review": Role.reviewer, "export": Role.reviewer, "train": Role.reviewer,
    "activate": Role.admin, "delete": Role.admin,
}


class AccessDenied(FacetError):
    """Not logged in (``status`` 401) or not allowed (403); the message says which and why."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Actor:
    """The person behind a request. ``user_id`` is ``None`` only in the open (no users) mode."""

    user_id: int | None
    name: str
    role: Role

    def can(self, action: str) -> bool:
        return self.role.at_least(ACTION_ROLES[action])

    def require(self, action: str) -> "Actor":
        """``self`` when allowed; :class:`AccessDenied` (403) naming the role needed otherwise."""
        if not self.can(action):
            need = ACTION_ROLES[action].value
            raise AccessDenied(f"{self.name} is {self.role.value}; '{action.replace('_', ' ')}' "
                               f"needs the {need} role or higher")
        return self


def _actor(user: User) -> Actor:
    return Actor(user.id, user.name, user.role)


class Auth:
    """Checks credentials against the users table. One per server; no per-user state.

    Verified passwords are remembered for ``ttl`` seconds as a salted digest next to the stored
    hash they matched, so an API client does not pay the scrypt cost (~60 ms) on every request;
    a changed password hash or role in the database takes effect at once.
    """

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 300.0) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self._lock = threading.Lock()
        self._salt = hashlib.sha256(str(time.time_ns()).encode()).digest()
        self._verified: dict[bytes, tuple[int, str, float]] = {}  # digest -> (user id, hash, expiry)

    def open_mode(self) -> bool:
        """True while the database has no users."""
        with session_scope(self.sessions) as session:
            return count_users(session) == 0

    def _digest(self, name: str, password: str) -> bytes:
        return hashlib.sha256(self._salt + name.encode() + b"\0" + password.encode()).digest()

    def check_password(self, name: str, password: str) -> Actor | None:
        """The user's :class:`Actor` when the password matches, else ``None``."""
        key = self._digest(name, password)
        with self._lock:
            hit = self._verified.get(key)
        with session_scope(self.sessions) as session:
            if hit is not None and hit[2] > time.monotonic():
                user = session.get(User, hit[0])
                if user is not None and user.password_hash == hit[1]:
                    return _actor(user)
            user = authenticate(session, name, password)
            if user is None:
                return None
            with self._lock:
                self._verified = {k: v for k, v in self._verified.items() if v[2] > time.monotonic()}
                self._verified[key] = (user.id, user.password_hash, time.monotonic() + self.ttl)
            return _actor(user)

    def gradio_login(self, username: str, password: str) -> bool:
        """Gradio's ``auth=`` callback."""
        return self.check_password(username, password) is not None

    def _open_actor(self, client_host: str | None) -> Actor:
        if client_host is None or not is_loopback(client_host):
            raise AccessDenied("no users exist yet, so only this machine may use the studio; "
                               "add one with: python app.py users add NAME --role admin", 401)
        return Actor(None, LOCAL_NAME, Role.admin)

    def from_basic(self, header: str | None, client_host: str | None) -> Actor:
        """The actor of an API request from its ``Authorization`` header (401 when missing/wrong)."""
        if self.open_mode():
            return self._open_actor(client_host)
        if not header or not header.lower().startswith("basic "):
            raise AccessDenied("authentication required (HTTP Basic)", 401)
        try:
            name, _, password = base64.b64decode(header[6:].strip(), validate=True) \
                .decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AccessDenied("malformed Basic credentials", 401) from None
        actor = self.check_password(name, password)
        if actor is None:
            raise AccessDenied("wrong user name or password", 401)
        return actor

    def from_username(self, username: str | None, client_host: str | None) -> Actor:
        """The actor of a UI event: Gradio's logged-in ``username``, or the open mode."""
        if username is None:
            if not self.open_mode():
                raise AccessDenied("users were added while the studio was open without login; "
                                   "restart `python app.py serve` to get the login page", 401)
            return self._open_actor(client_host)
        with session_scope(self.sessions) as session:
            user = get_user_by_name(session, username)
            if user is None:
                raise AccessDenied(f"user {username!r} no longer exists", 401)
            return _actor(user)
