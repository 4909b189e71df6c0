"""Property-based fuzzing of the REST API with Schemathesis, against the app's live OpenAPI schema.

For each role — anonymous (no ``Authorization`` header, or in 1 case in 4 one that does not
log in: malformed, unknown user, wrong password; the studio has users, so it is not "open"),
annotator, reviewer, admin — Schemathesis generates requests for every operation of
``/api/openapi.json``, valid ones (what the schema allows) and invalid ones (what it does
not), and each response must hold:

* no 5xx, ever (SAM and a task queue are configured, so no 503 is expected either);
* every 4xx is JSON with a ``detail`` field;
* the role rules of :data:`webapp.auth.ACTION_ROLES`, exactly: a role below what an operation
  needs never gets a 2xx (401 without credentials, 403 below the role, or 422 for a request
  FastAPI refuses before the route runs), and a role that has it never gets 401 or 403.

Why a live server (:class:`tests.webapp.live.LiveServer`, uvicorn on a loopback port) and not
the ASGI app in-process (``schemathesis.openapi.from_asgi``): requests then go through what a
real client meets — uvicorn's HTTP parsing of odd header values, Content-Length and chunked
bodies as :mod:`webapp.body_limits` sees them, the middlewares and the thread pool — and a
server error comes back as the client would see it (a ``500 text/plain``), not as a Python
exception re-raised into the test. The schema is loaded from the server itself
(``from_url``), so it is the live one, not a copy. Tracebacks of server errors are taken
from uvicorn's error log and shown in the failure message.

The studio is seeded with a few real images (labelled, submitted, unlabelled), an active
model version, a failed training job and a tiny SAM, and generation is nudged (3 cases in 4)
towards ids that exist, real PNG label maps, real image uploads and well-formed
cursors, so that requests get past the "404 no image" / "not a PNG" doors and into the use
cases. ``EXAMPLES`` cases per operation and mode (valid / invalid), each sent once as every
role (the same request meets each role's rules), from a fixed seed (``FACET_FUZZ_EXAMPLES`` /
``FACET_FUZZ_SEED`` to fuzz more or differently). Runs on both databases on purpose:
PostgreSQL refuses inputs SQLite takes (NUL characters, ids past 32 bits, text longer than its
column), so its half finds bugs the SQLite half cannot.
"""
from __future__ import annotations

import base64
import collections
import io
import json
import logging
import os
import re
from typing import Any

import numpy as np
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from PIL import Image as PILImage
from schemathesis.generation.modes import GenerationMode

from db.jobs import create_training_job, fail
from db.models import RevisionState, Role
from db.review import submit
from db.revisions import save_revision
from tests.model.tiny_sam import TINY_BUILDERS, write_tiny_checkpoint
from tests.webapp.helpers import (PASSWORDS, ROLES, SyncTasks, app_for, face_bytes, make_studio,
                                  png_of, publish_version)
from tests.webapp.live import LiveServer
from webapp import actions
from webapp.auth import ACTION_ROLES
from webapp.options import ServeOptions

EXAMPLES = int(os.environ.get("FACET_FUZZ_EXAMPLES", "10"))
"""Cases per operation and generation mode (each is sent as every role)."""
SEED = int(os.environ.get("FACET_FUZZ_SEED", "20240501"))

NEEDS: dict[str, str | None] = {
    "GET /api/health": None,
    "GET /api/images": "view",
    "POST /api/images": "upload",
    "GET /api/images/{image_id}/image": "view",
    "GET /api/images/{image_id}/annotation": "view",
    "PUT /api/images/{image_id}/annotation": "annotate",
    "POST /api/images/{image_id}/submit": "annotate",
    "POST /api/images/{image_id}/approve": "review",
    "POST /api/images/{image_id}/reject": "review",
    "GET /api/images/{image_id}/prediction": "view",
    "POST /api/images/{image_id}/sam": "annotate",
    "POST /api/train": "train",
    "GET /api/models": "view",
    "POST /api/models/{version_id}/activate": "activate",
    "GET /api/export": "export",
    "GET /api/editor/config": "view",
    "GET /api/images/{image_id}/open": "view",
    "POST /api/queue/next": "annotate",
    "GET /api/images/{image_id}/revisions": "view",
    "POST /api/images/{image_id}/restore": "annotate",
    "DELETE /api/images/{image_id}": "delete",
    "GET /api/jobs": "view",
    "GET /api/jobs/{job_id}": "view",
}
"""What each operation needs (an action of :data:`webapp.auth.ACTION_ROLES`; ``None``: public).
A new route fails the test until it is listed here."""

FUZZ_ROLES: tuple[str | None, ...] = (None, "ann", "rev", "adm")
DENIED = frozenset({400, 401, 403, 422, 429})
"""What a role below an operation's need may get: 401 / 403 (429 after failed logins), or
400 / 422 for a body or parameter FastAPI refuses before the route (and its role check) runs."""


# ---------------------------------------------------------------- input strategies
@st.composite
def label_pngs(draw) -> bytes:
    """Mostly real PNGs: label maps that fit the seeded images, and of other sizes, ids out of
    range, other modes (RGB, 16-bit, palette, 1-bit), cut short; sometimes bytes of anything."""
    kind = draw(st.sampled_from(["fits", "fits", "fits", "L", "L", "RGB", "I;16", "P", "1",
                                 "cut", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "fits":  # the seeded images' label size, ids in range: a save that can succeed
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        return png_of(rng.integers(0, draw(st.sampled_from([1, 19])), (64, 64), dtype=np.uint8))
    side = draw(st.sampled_from([1, 3, 32, 64, 65]))
    other = draw(st.sampled_from([side, 64, 2]))
    top = draw(st.sampled_from([1, 19, 20, 256]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = rng.integers(0, top, (side, other), dtype=np.int64)
    if kind == "RGB":
        return png_of(np.stack([values.astype(np.uint8)] * 3, axis=-1))
    if kind == "I;16":
        return png_of(values.astype(np.uint16) * 300, "I;16")
    if kind in ("P", "1"):
        buf = io.BytesIO()
        PILImage.fromarray(values.astype(np.uint8)).convert(kind).save(buf, format="PNG")
        return buf.getvalue()
    png = png_of(values.astype(np.uint8))
    return png[:draw(st.integers(8, max(9, len(png) - 1)))] if kind == "cut" else png


@st.composite
def uploads(draw) -> bytes:
    """Image files: real ones in several formats and sizes, cut ones, and plain bytes."""
    kind = draw(st.sampled_from(["PNG", "JPEG", "BMP", "WEBP", "gif", "tiny", "cut", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "tiny":
        return png_of(np.zeros((1, 1, 3), np.uint8))
    if kind == "gif":
        buf = io.BytesIO()
        PILImage.new("P", (5, 7)).save(buf, format="GIF")
        return buf.getvalue()
    data = face_bytes(draw(st.integers(100, 103)), 32, "PNG" if kind == "cut" else kind)
    return data[:draw(st.integers(0, len(data) - 1))] if kind == "cut" else data


def cursors(sorts: list[str]) -> st.SearchStrategy[str]:
    """Cursors shaped like the real ones (base64 of ``[sort, key, id]``) with odd contents."""
    anything = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                         st.floats(allow_nan=False), st.text(max_size=8),
                         st.just("2024-05-01T12:00:00"))
    raw = st.tuples(st.sampled_from(sorts), anything, anything).map(
        lambda t: base64.urlsafe_b64encode(json.dumps(list(t)).encode()).decode().rstrip("="))
    return st.one_of(raw, st.sampled_from(["", "=", "e30", "W10"]), st.text(max_size=12))


IF_MATCH = st.one_of(
    st.sampled_from(['"1"', '"2"', "1", "*", 'W/"1"', '""', '"0"', '"-1"', '"2147483648"',
                     '"99999999999999999999999"', '"1", "2"', "* ", '"²"', "W/\"³\""]),
    st.integers(-5, 2**70).map(lambda n: f'"{n}"'))
BIG = st.sampled_from([0, -1, 2**31 - 1, 2**31, 2**63, 10**30])
TEXT = st.one_of(st.sampled_from(["", " ", "ä", "%", "_", "\\", "ann", "x" * 1100]),
                 st.sampled_from(["a\x00b", "\x00"]), st.text(max_size=10))
"""Text inputs, with what a database may refuse (NUL, over-long)."""
JSON_TEXT = TEXT | st.just("a\ud800")
"""Text in a JSON body may also be a lone surrogate (sent as the escape ``\\ud800``)."""


JSON_FIELDS = {
    "POST /api/images/{image_id}/sam": ["points", "box"],
    "POST /api/images/{image_id}/restore": ["revision"],
    "POST /api/queue/next": ["skipped", "release"],
    "POST /api/images/{image_id}/submit": ["comment"],
    "POST /api/images/{image_id}/approve": ["comment"],
    "POST /api/images/{image_id}/reject": ["comment"],
    "DELETE /api/images/{image_id}": ["reason"]}
ODD_JSON = st.sampled_from([b"NaN", b"-Infinity", b"[NaN, 1, 1]", b'"a\\ud800"', b'["\\udfff"]',
                            b"1e400", b"1" * 400, b'"\\u0000"'])
"""JSON values that fit no field: NaN, infinities and lone surrogates (which a validation
error echoing them back cannot write as JSON in UTF-8), a NUL, a huge number."""


def _basic_of(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


BAD_CREDENTIALS = st.sampled_from([
    "", "Basic", "Basic !!!", "Bearer abc", _basic_of(b"ann"), _basic_of(b"ann:wrong"),
    _basic_of(b"a\x00b:x"), _basic_of(b"\xff\xfe:x"), _basic_of(b":"),
    _basic_of(b"x" * 300 + b":y"),
    _basic_of(("\u00e4" * 70 + ":p").encode())])
"""What an anonymous client may send instead of no credentials: none of it logs in."""


class Seeded:
    """Ids of what the seeded studio holds, for the nudged draws."""

    def __init__(self, images: list[int], versions: list[int], jobs: list[int]) -> None:
        self.ids = {"image_id": images, "version_id": versions, "job_id": jobs}


def nudge(case, data, seeded: Seeded) -> None:
    """Point the case at things that exist, with inputs that get deep (each part by chance)."""
    for name in list(case.path_parameters or {}):
        choice = data.draw(st.integers(0, 5))
        if choice <= 3:
            case.path_parameters[name] = data.draw(st.sampled_from(seeded.ids[name]))
        elif choice == 4:
            case.path_parameters[name] = data.draw(BIG)
    label = case.operation.label
    headers = case.headers if case.headers is not None else {}
    if label.endswith(("annotation", "restore")) and data.draw(st.booleans()):
        headers = {k: v for k, v in headers.items() if k.lower() != "if-match"}
        headers["If-Match"] = data.draw(IF_MATCH)
    case.headers = headers
    query = case.query if case.query is not None else {}
    if label == "GET /api/images" and data.draw(st.booleans()):
        query["cursor"] = data.draw(cursors(["id", "-id", "priority", "-priority", "updated",
                                             "-updated"]))
        query["sort"] = data.draw(st.sampled_from(["id", "-priority", "updated", "x"]))
        query["updated_since"] = data.draw(st.sampled_from(
            ["2024-05-01", "2024-05-01T12:00:00Z", "0001-01-01T00:00:00+01:00",
             "9999-12-31T23:59:59-01:00", "yesterday"]))
    if label == "GET /api/jobs" and data.draw(st.booleans()):
        query["cursor"] = data.draw(st.one_of(st.integers(0, 2**70).map(str), st.text(max_size=6),
                                              st.sampled_from(["²", "١٢", "1" * 5000])))
    if label.startswith("GET /api/") and "limit" in query and data.draw(st.booleans()):
        query["limit"] = data.draw(BIG)
    for name in {"GET /api/images": ["q", "labelled_by"], "GET /api/jobs": ["kind", "state"],
                 "DELETE /api/images/{image_id}": ["reason"]}.get(label, []):
        if data.draw(st.booleans()):
            query[name] = data.draw(TEXT)
    case.query = query
    if label.endswith(("submit", "approve", "reject")) and data.draw(st.booleans()):
        case.body = {"comment": data.draw(JSON_TEXT)}
    if label == "DELETE /api/images/{image_id}" and data.draw(st.booleans()):
        case.body = {"reason": data.draw(JSON_TEXT)}
    if label in JSON_FIELDS and not data.draw(st.integers(0, 4)):
        field = data.draw(st.sampled_from(JSON_FIELDS[label]))
        case.body = b'{"%s": %s}' % (field.encode(), data.draw(ODD_JSON))
    if label == "POST /api/images" and data.draw(st.booleans()):
        case.body = {"file": data.draw(uploads())}
    if label == "POST /api/images/{image_id}/sam" and data.draw(st.booleans()):
        point = st.tuples(st.integers(-1, 66), st.integers(-1, 66), st.sampled_from([0, 1, 1, 2]))
        box = st.tuples(st.integers(-1, 40), st.integers(-1, 40), st.integers(1, 40),
                        st.integers(1, 40)).map(lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]])
        case.body = {"points": [list(p) for p in data.draw(st.lists(point, max_size=3))],
                     "box": data.draw(st.one_of(st.none(), st.none(), box,
                                                st.lists(st.integers(-2, 70), max_size=5)))}
    if label == "POST /api/images/{image_id}/restore" and data.draw(st.booleans()):
        case.body = {"revision": data.draw(st.one_of(st.integers(-1, 4), BIG))}
    if label == "POST /api/queue/next" and data.draw(st.booleans()):
        ids = st.one_of(st.sampled_from(seeded.ids["image_id"]), BIG)
        case.body = {"skipped": data.draw(st.lists(ids, max_size=3)),
                     "release": data.draw(st.none() | ids)}


# ---------------------------------------------------------------- the studio
class ServerErrors(logging.Handler):
    """Collects the tracebacks uvicorn logs for exceptions escaping the app."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def _seed(studio, tiny_parser) -> Seeded:
    """Three images (revisions 1-2 then submitted; a draft; nothing), an active model
    version, a failed training job."""
    images = [actions.add_image(studio, None, face_bytes(n, 64), f"face{n}.png").id
              for n in (1, 2, 3)]
    version = publish_version(studio, tiny_parser, "v1.pt", {"mean_f1": 0.5})
    rng = np.random.default_rng(0)
    with studio.session() as session:
        for base in (None, 1):
            labels = png_of(rng.integers(0, 19, (64, 64), dtype=np.uint8))
            save_revision(session, images[0], labels, None, base, num_classes=19)
        submit(session, images[0], None, "first")
        save_revision(session, images[1], png_of(np.zeros((64, 64), np.uint8)), None, None,
                      state=RevisionState.draft, num_classes=19)
        job = create_training_job(session, {"source": "fuzz"}, None).id
        fail(session, job, "seeded failure")
    return Seeded(images, [version], [job])


@pytest.fixture()
def fuzz_target(settings, tiny_parser, tmp_path):
    schemathesis.openapi.media_type("image/png", label_pngs())
    options = ServeOptions(sam_checkpoint=write_tiny_checkpoint(tmp_path / "tiny_sam.pth"),
                           sam_model="tiny", sam_builders=TINY_BUILDERS)
    studio = make_studio(settings, options, SyncTasks())
    seeded = _seed(studio, tiny_parser)
    server = LiveServer(app_for(studio))   # configures uvicorn's loggers: add the handler after
    errors = ServerErrors()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(errors)
    try:
        with server as url:
            yield url, seeded, errors
    finally:
        logger.removeHandler(errors)


def _allowed(role: str | None, action: str | None) -> bool:
    if action is None:
        return True
    return role is not None and Role(ROLES[role]).at_least(ACTION_ROLES[action])


def _basic(role: str) -> str:
    return _basic_of(f"{role}:{PASSWORDS[role]}".encode())


def _problem(role: str | None, label: str, response) -> str | None:
    """What is wrong with one response, or ``None``."""
    status = response.status_code
    who = role or "anonymous"
    if status >= 500:
        return f"{who} {label}: {status} {response.text[:200]!r}"
    if 400 <= status < 500:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "detail" not in body:
            return f"{who} {label}: {status} without a JSON detail: {response.text[:200]!r}"
    allowed = _allowed(role, NEEDS[label])
    if not allowed and status not in DENIED:
        return f"{who} {label}: {status} though it needs {NEEDS[label]} ({response.text[:120]!r})"
    if role is None and NEEDS[label] is not None and status == 403:
        return f"anonymous {label}: 403, expected 401 asking for credentials"
    if allowed and status in (401, 403):
        return f"{who} {label}: {status} though {who} may {NEEDS[label]}: {response.text[:120]!r}"
    return None


def _has_inputs(op) -> bool:
    """Whether an operation takes anything but the Authorization header."""
    return bool(op.path_parameters or op.query or op.body
                or any(p.name.lower() != "authorization" for p in op.headers))


def _exception_line(traceback: str) -> str:
    """The ``SomeError: why`` line of a logged traceback."""
    lines = traceback.strip().splitlines()
    return next((line for line in reversed(lines) if re.match(r"^[\w.]+(Error|Exception)\b", line)),
                lines[-1])[:300]


def _cases(op, mode: GenerationMode, seeded: Seeded) -> list[tuple[Any, dict[str, str]]]:
    """``EXAMPLES`` generated (and mostly nudged) cases of one operation, each without its
    generated ``Authorization`` header (each role sends its own) and with the credentials the
    anonymous client sends: none, or (1 case in 4) ones that do not log in."""
    cases = []

    @seed(SEED)
    @hsettings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
               suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=mode), data=st.data())
    def collect(case, data) -> None:
        if data.draw(st.integers(0, 3)):
            nudge(case, data, seeded)
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        bad = data.draw(st.none() | st.none() | st.none() | BAD_CREDENTIALS)
        cases.append((case, {} if bad is None else {"Authorization": bad}))

    collect()
    return cases


@pytest.mark.slow   # ~20-40 s per database on two cores
def test_fuzzed_requests_never_fail_the_server_and_keep_the_role_rules(fuzz_target):
    url, seeded, errors = fuzz_target
    schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.label for op in operations) == sorted(NEEDS), "routes changed: update NEEDS"
    # Deleting goes last, so the other operations meet the seeded images.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    sessions = {role: requests.Session() for role in FUZZ_ROLES}
    credentials = {role: {"Authorization": _basic(role)} for role in FUZZ_ROLES if role}

    problems: dict[str, str] = {}       # the first example of each kind of problem
    statuses: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    generated = sent = 0
    for op in operations:
        # Each case goes out once per role, in the order of FUZZ_ROLES: the same request
        # meets each role's rules. No invalid cases for an operation whose only input is the
        # Authorization header (there is nothing else to make invalid).
        modes = GenerationMode if _has_inputs(op) else [GenerationMode.POSITIVE]
        for case, anonymous in (c for mode in modes for c in _cases(op, mode, seeded)):
            generated += 1
            for role in FUZZ_ROLES:
                response = case.call(base_url=url, session=sessions[role],
                                     headers=credentials.get(role, anonymous), timeout=120)
                sent += 1
                statuses[op.label][response.status_code] += 1
                problem = _problem(role, op.label, response)
                if problem is not None:
                    key = problem.split(":")[0] + f" {response.status_code}"
                    problems.setdefault(key, f"{problem}\n    {case.as_curl_command()[:600]}")

    server_errors = sum(n for c in statuses.values() for status, n in c.items() if status >= 500)
    print(f"\nfuzzed {len(operations)} endpoints x {len(FUZZ_ROLES)} roles x {EXAMPLES} examples "
          f"per mode (valid, invalid): {generated} cases, {sent} requests, "
          f"{server_errors} server errors")
    for label in sorted(statuses):
        print(f"  {label}: {dict(sorted(statuses[label].items()))}")
    exceptions = "\n".join(dict.fromkeys(_exception_line(r) for r in errors.records))
    first = "\n".join(errors.records[0].strip().splitlines()[-24:]) if errors.records else ""
    assert not problems and not errors.records, (
        "\n".join(problems.values()) + f"\nserver exceptions:\n{exceptions}\n"
        f"first traceback (end):\n{first}")
    assert generated >= len(operations) * EXAMPLES


# ---------------------------------------------------------------- what the fuzzing found
def _cursor(*parts) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def _json(body: bytes) -> dict[str, Any]:
    """Request arguments of a JSON body sent as these bytes (NaN, escapes)."""
    return {"content": body, "headers": {"Content-Type": "application/json"}}


def _multipart(filename: bytes, data: bytes) -> dict[str, Any]:
    """Request arguments of an upload whose file name is sent as these bytes (clients
    percent-encode a NUL; a raw request need not)."""
    body = (b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + filename
            + b"\"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n--b0undary--\r\n")
    return {"content": body, "headers": {"Content-Type": "multipart/form-data; boundary=b0undary"}}


def test_inputs_the_database_cannot_take_are_refused_with_422(settings):
    """One request for each kind of server error the fuzzing found (each was a 500: a driver
    error or a Python exception), now a 4xx with a JSON ``detail``."""
    from fastapi.testclient import TestClient

    studio = make_studio(settings, tasks=SyncTasks())
    image = actions.add_image(studio, None, face_bytes(1), "face.png").id
    client = TestClient(app_for(studio))
    client.auth = ("adm", PASSWORDS["adm"])
    png = png_of(np.zeros((64, 64), np.uint8))
    huge = [0, 2**31, 2**63, 10**30]
    requests_ = (
        # ids past the database's integers (SQLite: OverflowError; PostgreSQL: out of range)
        [("GET", f"/api/images/{n}/{what}", {}) for n in huge
         for what in ("image", "annotation", "prediction", "open", "revisions")]
        + [("PUT", f"/api/images/{n}/annotation", {"content": png}) for n in huge]
        + [("POST", f"/api/images/{n}/approve", {}) for n in huge]
        + [("DELETE", f"/api/images/{n}", {}) for n in huge]
        + [("POST", f"/api/models/{n}/activate", {}) for n in huge]
        + [("GET", f"/api/jobs/{n}", {}) for n in huge]
        + [("POST", "/api/queue/next", {"json": {"release": 2**63}}),
           ("POST", "/api/queue/next", {"json": {"skipped": [1, 10**30]}}),
           ("POST", f"/api/images/{image}/restore", {"json": {"revision": 2**63}})]
        # If-Match and cursors: other digits than ASCII ones (ValueError), huge numbers
        + [("PUT", f"/api/images/{image}/annotation",
            {"content": png, "headers": {"If-Match": value}})
           for value in ['"²"'.encode("latin-1"), '"99999999999999999999"', '"2147483648"']]
        + [("GET", "/api/jobs", {"params": {"cursor": value}})
           for value in ["²", "١٢", "99999999999999999999", "1" * 5000]]
        + [("GET", "/api/images", {"params": {"cursor": _cursor("id", None, 2**63)}}),
           ("GET", "/api/images", {"params": {"sort": "priority",
                                              "cursor": _cursor("priority", 10**400, 1)}}),
           ("GET", "/api/images", {"params": {"sort": "updated",
                                              "cursor": _cursor("updated", 5, 1)}}),
           ("GET", "/api/images", {"params": {"updated_since": "0001-01-01T00:00:00+01:00"}})]
        # text PostgreSQL cannot hold (NUL) and no database can (lone surrogates)
        + [("GET", "/api/images", {"params": {name: "a\x00b"}}) for name in ("q", "labelled_by")]
        + [("GET", "/api/jobs", {"params": {"kind": "\x00"}}),
           ("DELETE", f"/api/images/{image}", {"params": {"reason": "a\x00"}}),
           ("DELETE", f"/api/images/{image}", {"json": {"reason": "a\x00"}}),
           ("POST", f"/api/images/{image}/submit", {"json": {"comment": "a\x00b"}}),
           ("POST", f"/api/images/{image}/submit", _json(b'{"comment": "a\\ud800"}'))]
        # JSON a validation error could not echo back (FastAPI's own handler failed on it)
        + [("POST", f"/api/images/{image}/restore", _json(body))
           for body in (b'{"revision": NaN}', b'{"revision": -Infinity}',
                        b'{"revision": "\\ud800"}')]
        # upload file names PostgreSQL cannot hold (NUL; longer than the column)
        + [("POST", "/api/images", _multipart(name, face_bytes(2)))
           for name in (b"a\x00b.png", b"x" * 600 + b".png")]
    )
    for method, path, kwargs in requests_:
        response = client.request(method, path, **kwargs)
        assert response.status_code == 422, (method, path, kwargs.keys(), response.text[:300])
        assert response.json()["detail"], (method, path)
    # A Basic login whose name the database cannot compare is a failed login (was a 500).
    for raw in (b"a\x00b:x", b"adm\x00:" + PASSWORDS["adm"].encode()):
        response = client.get("/api/models", auth=None, headers={"Authorization": _basic_of(raw)})
        assert response.status_code == 401 and response.json()["detail"], response.text
    # The image is still there: every refusal came before any change.
    assert client.get(f"/api/images/{image}/image").status_code == 200
