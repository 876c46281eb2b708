"""The requests of the query API: auth decisions and the parameters of /api/breaches."""

from __future__ import annotations

import pytest

from monitor.query.requests import MAX_LIMIT, ApiError, check_auth, parse_breach_query

# ------------------------------------------------------------------------------------------ auth


def test_auth_decisions():
    assert check_auth("s3cret", "Bearer s3cret") is None
    assert check_auth("s3cret", "bearer  s3cret ") is None  # scheme is case-insensitive
    for header in (None, "", "Bearer", "Bearer   ", "Basic czNjcmV0", "s3cret"):
        err = check_auth("s3cret", header)
        assert err is not None and err.status == 401, header
        assert err.headers == {"WWW-Authenticate": "Bearer"}
    for header in ("Bearer s3cre", "Bearer s3cret2", "Bearer S3CRET", "Bearer ünï"):
        err = check_auth("s3cret", header)
        assert err is not None and (err.status, err.headers) == (403, {}), header


# ------------------------------------------------------------------------------------------ parameters


def test_breach_parameters():
    q = parse_breach_query([])
    assert (q.owner, q.process, q.kind, q.limit) == (None, None, None, 100)
    q = parse_breach_query([("owner", "field-ops"), ("process", "bb"), ("kind", "tolerance_breached"),
                            ("limit", "1000")])
    assert (q.owner, q.process, q.kind, q.limit) == ("field-ops", "bb", "tolerance_breached", 1000)
    q = parse_breach_query([("owner", ""), ("process", ""), ("kind", ""), ("limit", "")])  # empty = absent
    assert (q.owner, q.process, q.kind, q.limit) == (None, None, None, 100)
    assert parse_breach_query([("owner", "-")]).owner == "-"  # runs without an owner


@pytest.mark.parametrize("items", [
    [("limit", "0")], [("limit", str(MAX_LIMIT + 1))], [("limit", "-1")], [("limit", "1.5")], [("limit", "ten")],
    [("limit", " 10")], [("limit", "1e3")], [("kind", "approaching")], [("kind", "resolved")], [("kind", "x")],
    [("owners", "a")], [("owner", "a"), ("owner", "b")], [("process", "p" * 257)],
])
def test_bad_breach_parameters_are_400(items):
    with pytest.raises(ApiError) as info:
        parse_breach_query(items)
    assert info.value.status == 400 and info.value.message
