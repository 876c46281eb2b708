"""The requests of the query API: bearer-token auth, the parameters of /api/breaches, the errors answered."""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.vocabulary import BREACH_KINDS

API_DISABLED = "the API is disabled (set SLAMON_API_TOKEN)"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
REDIS_TIMEOUT = 2.0  # seconds for all the Redis work of one request (or one registry update)
MAX_FILTER_LENGTH = 256
BREACH_PARAMS = ("owner", "process", "kind", "limit")


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def check_auth(token: str, authorization: str | None) -> ApiError | None:
    """None when the request may proceed, else the error to answer.

    No token configured: the API is off (404). No usable `Authorization: Bearer ...` header: 401 with
    `WWW-Authenticate: Bearer` -- also a header that is not UTF-8 (the web server hands its bytes on as lone
    surrogates) or not a string. A bearer token that is not the configured one: 403. Constant-time comparison."""
    if not token:
        return ApiError(404, API_DISABLED)
    scheme, _, credentials = (authorization if isinstance(authorization, str) else "").strip().partition(" ")
    try:
        given = credentials.strip().encode("utf-8")
    except UnicodeEncodeError:
        given = b""
    if scheme.lower() != "bearer" or not given:
        return ApiError(401, "missing bearer token (Authorization: Bearer <token>)", {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given, token.encode("utf-8")):
        return ApiError(403, "invalid token")
    return None


@dataclass(slots=True)
class BreachQuery:
    owner: str | None = None
    process: str | None = None
    kind: str | None = None
    limit: int = DEFAULT_LIMIT


_DIGITS = re.compile(r"[0-9]{1,7}\Z")


def parse_breach_query(items: Iterable[tuple[str, str]]) -> BreachQuery:
    """The query parameters of /api/breaches (pairs, repeated names kept). An empty value is an absent
    parameter; an unknown or repeated parameter, an unknown kind or a limit outside 1..1000 is a 400."""
    seen: dict[str, str] = {}
    for name, value in items:
        if name not in BREACH_PARAMS:
            raise ApiError(400, f"unknown parameter {name!r} (use {', '.join(BREACH_PARAMS)})")
        if name in seen:
            raise ApiError(400, f"parameter {name!r} given more than once")
        seen[name] = value
    q = BreachQuery()
    for name in ("owner", "process"):
        value = seen.get(name, "")
        if len(value) > MAX_FILTER_LENGTH:
            raise ApiError(400, f"{name} is longer than {MAX_FILTER_LENGTH} characters")
        setattr(q, name, value or None)
    kind = seen.get("kind", "")
    if kind and kind not in BREACH_KINDS:
        raise ApiError(400, f"kind must be one of {', '.join(BREACH_KINDS)}, not {kind!r}")
    q.kind = kind or None
    limit = seen.get("limit", "")
    if limit:
        if not _DIGITS.match(limit) or not 1 <= int(limit) <= MAX_LIMIT:
            raise ApiError(400, f"limit must be an integer from 1 to {MAX_LIMIT}, not {limit!r}")
        q.limit = int(limit)
    return q
