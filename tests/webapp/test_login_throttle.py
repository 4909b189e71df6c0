"""webapp/auth.py: failed logins are throttled per name (UI and API), logged, and never tell
whether a user exists."""
from __future__ import annotations

import logging

import pytest

from tests.webapp.helpers import PASSWORDS, app_for, basic_client, make_studio
from webapp.auth import AccessDenied, LoginThrottle, LoginThrottled


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def studio(settings):
    studio = make_studio(settings, users=False)
    from tests.webapp.helpers import add_users
    add_users(studio, names=("ann",))
    clock = Clock()
    studio.auth.throttle = LoginThrottle(clock=clock)
    studio.clock = clock
    return studio


def test_throttle_delay_doubles_caps_and_forgets_old_failures():
    clock = Clock()
    t = LoginThrottle(max_failures=5, window=900, base_delay=30, max_delay=900, clock=clock)
    assert [t.failure("a") for _ in range(4)] == [0, 0, 0, 0]
    assert t.retry_after("a") == 0
    assert t.failure("a") == 30 and t.retry_after("a") == 30 and t.retry_after("b") == 0
    clock.now += 30
    assert t.retry_after("a") == 0
    assert t.failure("a") == 60
    clock.now += 60
    assert [t.failure("a") for _ in range(6)] == [120, 240, 480, 900, 900, 900]
    t.success("a")
    assert t.retry_after("a") == 0 and t.failure("a") == 0
    clock.now += 2000                       # all failures fell out of the 15 minute window
    assert [t.failure("a") for _ in range(4)] == [0, 0, 0, 0]


def test_ui_login_five_wrong_then_right_is_refused_until_the_delay_passes(studio, caplog):
    auth, right = studio.auth, PASSWORDS["ann"]
    with caplog.at_level(logging.WARNING, logger="webapp.auth"):
        assert [auth.gradio_login("ann", f"wrong{i}") for i in range(5)] == [False] * 5
        assert auth.gradio_login("ann", right) is False       # held back, password unchecked
        studio.clock.now += 29
        assert auth.gradio_login("ann", right) is False
        studio.clock.now += 1
        assert auth.gradio_login("ann", right) is True
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("failed login for 'ann'" in r.getMessage() for r in failures) == 5
    assert sum("login refused for 'ann'" in r.getMessage() for r in failures) == 2
    assert not any("wrong" in r.getMessage() or right in r.getMessage() for r in failures)
    # the success reset the count: four more failures do not throttle
    assert [auth.gradio_login("ann", "bad") for _ in range(4)] == [False] * 4
    assert auth.gradio_login("ann", right) is True


def test_from_basic_raises_429_with_retry_after_and_logs_the_client(studio, caplog):
    import base64
    header = "Basic " + base64.b64encode(b"ann:nope").decode()
    with caplog.at_level(logging.WARNING, logger="webapp.auth"):
        for _ in range(5):
            with pytest.raises(AccessDenied) as err:
                studio.auth.from_basic(header, "10.1.2.3")
            assert err.value.status == 401
    with pytest.raises(LoginThrottled) as err:
        studio.auth.from_basic(header, "10.1.2.3")
    assert err.value.status == 429 and err.value.retry_after == 30
    assert all("10.1.2.3" in r.getMessage() for r in caplog.records)


def test_api_unknown_user_and_wrong_password_look_the_same_and_get_throttled(studio):
    app = app_for(studio)
    client = basic_client(app, None)
    unknown = client.get("/api/images", auth=("nobody", "x"))
    wrong = client.get("/api/images", auth=("ann", "x"))
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert dict(unknown.headers) == dict(wrong.headers)
    for _ in range(4):
        assert client.get("/api/images", auth=("ann", "x")).status_code == 401
    for name, password in [("ann", PASSWORDS["ann"]), ("ann", "x")]:
        r = client.get("/api/images", auth=(name, password))
        assert r.status_code == 429 and r.headers["Retry-After"] == "30", r.text
        assert "too many failed logins" in r.json()["detail"]
    # an unknown name is throttled exactly like a real one
    for _ in range(5):
        client.get("/api/images", auth=("nobody", "x"))
    assert client.get("/api/images", auth=("nobody", "x")).status_code == 429
    studio.clock.now += 30
    assert client.get("/api/images", auth=("ann", PASSWORDS["ann"])).status_code == 200
    assert client.get("/api/images", auth=("ann", PASSWORDS["ann"])).status_code == 200
