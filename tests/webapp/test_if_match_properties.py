"""Property tests (Hypothesis) of the ``If-Match`` parser of the REST API
(:func:`webapp.api.parse_if_match`): what a client may send, and that anything else is a
clear 422 — never another exception (which would be a 500)."""
from __future__ import annotations

import pytest
from fastapi import HTTPException
from hypothesis import given, settings
from hypothesis import strategies as st

from db.models import MAX_ID
from webapp.actions import ANY_REVISION
from webapp.api import _etag, parse_if_match

PROPS = settings(max_examples=100, deadline=None, database=None)

revisions = st.integers(0, MAX_ID)
spaces = st.text(alphabet=" \t", max_size=3)
latin1 = st.characters(codec="latin-1")   # what an HTTP header value decodes to (Starlette)


@PROPS
@given(revisions, spaces, spaces)
def test_the_etag_the_api_sends_is_accepted_back(number, before, after):
    assert parse_if_match(before + _etag(number) + after) == number


@PROPS
@given(revisions, st.sampled_from(['{}', '"{}"', 'W/"{}"', '{:015d}', '"{:03d}"']), spaces, spaces)
def test_valid_forms_give_the_number(number, form, before, after):
    assert parse_if_match(before + form.format(number) + after) == number


@PROPS
@given(spaces)
def test_star_is_any_revision_and_nothing_is_none(blank):
    assert parse_if_match(blank + "*" + blank) == ANY_REVISION
    assert parse_if_match(blank) is None
    assert parse_if_match(None) is None


@PROPS
@given(st.integers(MAX_ID + 1, 10**40), st.sampled_from(['{}', '"{}"', 'W/"{}"']))
def test_a_number_past_the_database_range_is_422(number, form):
    with pytest.raises(HTTPException) as refused:
        parse_if_match(form.format(number))
    assert refused.value.status_code == 422 and "If-Match" in refused.value.detail


@PROPS
@given(st.text(alphabet=st.sampled_from("²³¹١٢٣०१𝟘𝟙"), min_size=1, max_size=4))
def test_digits_other_than_ascii_are_422(digits):
    """``str.isdigit`` is true for them, but ``int()`` refuses some ('²'): they were a 500."""
    for value in (digits, f'"{digits}"'):
        with pytest.raises(HTTPException) as refused:
            parse_if_match(value)
        assert refused.value.status_code == 422


@PROPS
@given(st.one_of(st.text(alphabet=latin1, max_size=12), st.text(max_size=12)))
def test_anything_else_is_a_422_never_another_error(value):
    try:
        parsed = parse_if_match(value)
    except HTTPException as refused:
        assert refused.status_code == 422 and repr(value) in refused.detail
        return
    # accepted: blank, "*", or a number written in ASCII digits inside the value
    if parsed is None:
        assert not value.strip()
    elif parsed == ANY_REVISION:
        assert value.strip() == "*"
    else:
        assert isinstance(parsed, int) and 0 <= parsed <= MAX_ID
        digits = value.strip().removeprefix("W/").strip('"')
        assert digits.isascii() and digits.isdigit() and int(digits) == parsed
