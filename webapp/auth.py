"""Who is acting, and may they? HTTP Basic for the API, Gradio's login for the UI, same users.

Roles are ordered annotator < reviewer < admin (:class:`db.models.Role`). With no user in the
database the studio runs open on loopback only: every local request acts as the built-in
``local`` admin (``user_id=None``), and nothing from another host gets in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from core.errors import FacetError
from db.engine import session_scope
from db.models import Role, User
from db.users import authenticate, count_users, get_user_by_name
from webapp.options import is_loopback

log = logging.getLogger(__name__)

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


class LoginThrottled(AccessDenied):
    """Too many failed logins for a name: refused unchecked for ``retry_after`` whole seconds
    (429; the API sends ``Retry-After``)."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed logins; try again in {self.retry_after} s", 429)


@dataclass
class _Failures:
    times: list[float] = field(default_factory=list)  # failures inside the window, oldest first
    until: float = 0.0                                # refused before this clock reading


class LoginThrottle:
    """Failed-login bookkeeping per user name (thread-safe; one per :class:`Auth`).

    Once a name has ``max_failures`` failures within ``window`` seconds, attempts for it are
    refused without checking the password for ``base_delay`` seconds; each further failure
    (made after a delay ran out) doubles the delay, up to ``max_delay``. A success resets the
    name. Refused attempts are not failures: they neither extend nor reset the delay.
    ``clock`` is injectable for tests (default :func:`time.monotonic`).
    """

    def __init__(self, max_failures: int = 5, window: float = 15 * 60.0,
                 base_delay: float = 30.0, max_delay: float = 15 * 60.0,
                 clock: Callable[[], float] = time.monotonic, max_names: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window = window
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.clock = clock
        self.max_names = max_names
        self._lock = threading.Lock()
        self._names: dict[str, _Failures] = {}

    def retry_after(self, name: str) -> float:
        """Seconds until ``name`` may try again; 0 when it may try now."""
        with self._lock:
            entry = self._names.get(name)
            return 0.0 if entry is None else max(0.0, entry.until - self.clock())

    def failure(self, name: str) -> float:
        """Record a failed attempt; the delay now imposed on ``name`` (0 when none)."""
        with self._lock:
            now = self.clock()
            if name not in self._names and len(self._names) >= self.max_names:
                self._prune(now)
            entry = self._names.setdefault(name, _Failures())
            entry.times = [t for t in entry.times if now - t < self.window] + [now]
            extra = len(entry.times) - self.max_failures
            if extra < 0:
                return 0.0
            delay = min(self.max_delay, self.base_delay * 2.0 ** min(extra, 64))
            entry.until = now + delay
            return delay

    def success(self, name: str) -> None:
        with self._lock:
            self._names.pop(name, None)

    def _prune(self, now: float) -> None:
        """Forget names with no failure in the window and no running delay (bounds memory)."""
        self._names = {n: e for n, e in self._names.items()
                       if e.until > now or any(now - t < self.window for t in e.times)}


def _actor(user: User) -> Actor:
    return Actor(user.id, user.name, user.role)


class Auth:
    """Checks credentials against the users table. One per server; no per-user state.

    Verified passwords are remembered for ``ttl`` seconds as a salted digest next to the stored
    hash they matched, so an API client does not pay the scrypt cost (~60 ms) on every request;
    a changed password hash or role in the database takes effect at once.

    Failed logins (UI and API alike) go through :meth:`login`, which keeps them in
    ``throttle`` (a :class:`LoginThrottle`) and logs each at WARNING with the name and client.
    """

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 300.0,
                 throttle: LoginThrottle | None = None) -> None:
        self.sessions = sessions
        self.ttl = ttl
        self.throttle = throttle if throttle is not None else LoginThrottle()
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

    def login(self, name: str, password: str, client_host: str | None) -> Actor:
        """:meth:`check_password` behind the throttle.

        Raises :class:`LoginThrottled` (429) while ``name`` is held back, else
        :class:`AccessDenied` (401) with one message whether or not the user exists.
        """
        key = name.strip()
        wait = self.throttle.retry_after(key)
        if wait > 0:
            log.warning("login refused for %r from %s: throttled for %.0f s more",
                        key, client_host or "unknown client", wait)
            raise LoginThrottled(wait)
        actor = self.check_password(name, password)
        if actor is None:
            delay = self.throttle.failure(key)
            log.warning("failed login for %r from %s%s", key, client_host or "unknown client",
                        f"; further attempts refused for {delay:.0f} s" if delay else "")
            raise AccessDenied("wrong user name or password", 401)
        self.throttle.success(key)
        return actor

    def gradio_login(self, username: str, password: str) -> bool:
        """Gradio's ``auth=`` callback (Gradio passes no request, so the client is not known)."""
        try:
            self.login(username, password, None)
        except AccessDenied:
            return False
        return True

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
        return self.login(name, password, client_host)

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
