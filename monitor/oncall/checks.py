"""What the board and the notifier accept from `sla.warnings` and `sla.outcomes` (CONTRACTS.md section 4), checked
before a record reaches Redis or Alertmanager: a record that fails is skipped (logged and counted under one of
the reasons below), never retried and never fatal.

Reasons (the `reason` label of `slamon_skipped_records_total`), checked in this order:

| reason | the record |
|---|---|
| `not_utf8` | its value is not UTF-8 |
| `not_json` | its value is not JSON (or the record has no value) |
| `not_an_object` | its value is JSON but not an object (`null`, a list, a number, a string) |
| `missing_field` | lacks a field of the contract |
| `wrong_type` | has a field of the wrong JSON type (`run: "x"`, `crossed_at: 5`, `order_id: null`) |
| `bad_value` | has a field of the right type and a value outside the contract: an unknown kind or state, `run` < 1, a time that is not RFC 3339 with an offset, a `warning_id` other than `{order_id}:{node}:{run}:{kind}` (`...:approaching@{p}` for an early warning with a `threshold`), a `threshold` outside 0..1 or on another kind than `approaching` |
| `rejected` | passed these checks, but the sink refused it: the board's Lua script failed on it, or Alertmanager answered 400 |
"""

from __future__ import annotations

from typing import Any

import orjson

from ..core.instants import InstantError, parse_instant
from ..core.records import warning_id
from ..core.vocabulary import APPROACHING, CROSSING_KINDS, OUTCOME_STATES, RESOLVED, STATES

REASONS = NOT_UTF8, NOT_JSON, NOT_AN_OBJECT, MISSING_FIELD, WRONG_TYPE, BAD_VALUE, REJECTED = (
    "not_utf8", "not_json", "not_an_object", "missing_field", "wrong_type", "bad_value", "rejected")

WARNING_KINDS = (*CROSSING_KINDS, RESOLVED)


class Unusable(Exception):
    """A record a consumer cannot use: `reason` (one of REASONS) and a readable `detail`."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode(raw: bytes | None) -> Any:
    """The JSON value of a record's bytes; raises Unusable (`not_utf8`, `not_json`)."""
    if raw is None:
        raise Unusable(NOT_JSON, "the record has no value")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise Unusable(NOT_UTF8, str(bad)) from None
        raise Unusable(NOT_JSON, str(exc)) from None


# field kinds: what a field must hold
TEXT, OPTIONAL_TEXT, COUNT, NUMBER, INTEGER, OBJECT, INSTANT = (
    "a string", "a string or null", "an integer >= 1", "a number", "an integer", "an object", "an RFC 3339 time")
_TYPES: dict[str, tuple[type, ...]] = {TEXT: (str,), OPTIONAL_TEXT: (str, type(None)), COUNT: (int,), NUMBER: (int, float),
                                       INTEGER: (int,), OBJECT: (dict,), INSTANT: (str,)}

_RUN = {"order_id": TEXT, "process": TEXT, "node": TEXT, "run": COUNT, "segment": TEXT, "owner": OPTIONAL_TEXT,
        "policy_version": INTEGER, "attrs": OBJECT}
_JUDGED = {"state": TEXT, "started_at": INSTANT, "elapsed_s": NUMBER, "commitment_s": NUMBER, "tolerance_s": NUMBER}
# every field either consumer reads or keeps, and what it must hold (`detected_at` is optional and not read;
# `threshold`, on the early warnings of a list `early_warning` only, is checked in check_warning)
WARNING_SCHEMA = {"warning_id": TEXT, "kind": TEXT, **_RUN, **_JUDGED, "crossed_at": INSTANT}
OUTCOME_SCHEMA = {**_RUN, **_JUDGED, "ended_at": INSTANT}


def _check(rec: Any, schema: dict[str, str]) -> dict[str, Any]:
    if not isinstance(rec, dict):
        raise Unusable(NOT_AN_OBJECT, f"a JSON {type(rec).__name__ if rec is not None else 'null'}, not an object")
    missing = [f for f in schema if f not in rec]
    if missing:
        raise Unusable(MISSING_FIELD, "no " + ", ".join(missing))
    for f, kind in schema.items():
        v = rec[f]
        if not isinstance(v, _TYPES[kind]) or (isinstance(v, bool) and kind in (COUNT, NUMBER, INTEGER)):
            raise Unusable(WRONG_TYPE, f"{f} must be {kind}, not {v!r:.80}")
    for f, kind in schema.items():
        if kind == COUNT and rec[f] < 1:
            raise Unusable(BAD_VALUE, f"{f} must be at least 1, not {rec[f]}")
        if kind == INSTANT:
            try:
                parse_instant(rec[f])
            except InstantError:
                raise Unusable(BAD_VALUE, f"{f} is not an RFC 3339 time with an offset: {rec[f]!r:.80}") from None
    return rec


def check_warning(rec: Any) -> dict[str, Any]:
    """`rec` if it is a warning both consumers can use; raises Unusable."""
    _check(rec, WARNING_SCHEMA)
    threshold = rec.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int | float)):
        raise Unusable(WRONG_TYPE, f"threshold must be a number, not {threshold!r:.80}")
    if rec["kind"] not in WARNING_KINDS:
        raise Unusable(BAD_VALUE, f"unknown kind {rec['kind']!r:.80}")
    if rec["state"] not in STATES:
        raise Unusable(BAD_VALUE, f"unknown state {rec['state']!r:.80}")
    if threshold is not None:  # an early warning of a list `early_warning` (CONTRACTS.md section 12)
        if rec["kind"] != APPROACHING:
            raise Unusable(BAD_VALUE, f"a {rec['kind']} warning has no threshold, got {threshold!r:.80}")
        if not 0 < threshold < 1:
            raise Unusable(BAD_VALUE, f"threshold must be between 0 and 1 (exclusive), not {threshold!r:.80}")
    expected = warning_id(rec["order_id"], rec["node"], rec["run"], rec["kind"], threshold)
    if rec["warning_id"] != expected:
        raise Unusable(BAD_VALUE, f"warning_id {rec['warning_id']!r:.120} is not {expected!r:.120}")
    return rec


def check_outcome(rec: Any) -> dict[str, Any]:
    """`rec` if it is an outcome the board can use; raises Unusable."""
    _check(rec, OUTCOME_SCHEMA)
    if rec["state"] not in OUTCOME_STATES:
        raise Unusable(BAD_VALUE, f"{rec['state']!r:.80} is not a final state")
    return rec
