"""The topic catalogue and the JSON Schemas of topic values, without a broker."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from monitor.catalogue import TopicsError, load_catalogue, load_schema
from monitor.catalogue.spec import SCHEMAS_DIR

SCHEMA_FILES = sorted(p.name for p in SCHEMAS_DIR.glob("*.json"))


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name), format_checker=FormatChecker())


def is_valid(name: str, value) -> bool:
    return validator(name).is_valid(value)


# ---------------------------------------------------------------------------------------------- schemas


def test_there_is_one_schema_per_topic():
    assert SCHEMA_FILES == sorted(s.schema for s in load_catalogue())


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_schema_is_valid_draft_2020_12(name):
    schema = json.loads((SCHEMAS_DIR / name).read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema.get("description")


def test_load_schema_accepts_file_stem_and_topic():
    by_file = load_schema("sla-warning.schema.json")
    assert load_schema("sla-warning") == by_file
    assert load_schema("sla.warnings") == by_file
    with pytest.raises(TopicsError):
        load_schema("no-such-thing")


# ------------------------------------------------------------------------------------- workflow events

EVENTS = [
    {"event_id": "e1", "order_id": "o1", "process": "broadband_install", "type": "node_started",
     "node": "site_survey", "at": "2026-11-21T08:00:00Z", "segment": "enterprise", "attrs": {"city": "Lyon"}},
    {"event_id": "e2", "order_id": "o1", "process": "broadband_install", "type": "node_paused",
     "node": "site_survey", "at": "2026-11-21T09:00:00.5+08:00"},
    {"event_id": "e3", "order_id": "o1", "process": "broadband_install", "type": "node_resumed",
     "node": "site_survey", "at": "2026-11-21T10:00:00.123456-05:30"},
    {"event_id": "e4", "order_id": "o1", "process": "broadband_install", "type": "node_completed",
     "node": "site_survey", "at": "2026-11-21T11:00:00.000Z"},
    {"event_id": "e5", "order_id": "o1", "process": "broadband_install", "type": "node_cancelled",
     "node": "installation", "at": "2026-12-31T23:59:59+00:00"},
    {"event_id": "e6", "order_id": "o1", "process": "broadband_install", "type": "order_completed",
     "at": "2026-11-22T08:00:00Z"},
    {"event_id": "e7", "order_id": "o2", "process": "broadband_install", "type": "order_cancelled",
     "at": "2026-02-28T00:00:00.1-12:00", "attrs": {}},
    {"event_id": "e8", "order_id": "t1", "process": "support_ticket", "type": "status_changed",
     "status": "Awaiting Customer", "at": "2026-11-21T08:00:00Z", "attrs": {"priority": "P1"}},
]


def test_samples_cover_all_eight_event_types():
    assert {e["type"] for e in EVENTS} == set(load_schema("workflow-event")["properties"]["type"]["enum"])
    assert len({e["type"] for e in EVENTS}) == 8


@pytest.mark.parametrize("event", EVENTS, ids=[e["type"] for e in EVENTS])
def test_valid_events(event):
    validator("workflow-event").validate(event)


def test_extra_event_properties_are_allowed():
    assert is_valid("workflow-event", {**EVENTS[0], "source_system": "crm", "seq": 3})


def test_order_events_need_no_node():
    assert "node" not in EVENTS[5] and is_valid("workflow-event", EVENTS[5])


def _without(event, key):
    event = copy.deepcopy(event)
    del event[key]
    return event


BAD_EVENTS = {
    "missing event_id": _without(EVENTS[0], "event_id"),
    "missing order_id": _without(EVENTS[0], "order_id"),
    "missing process": _without(EVENTS[0], "process"),
    "missing type": _without(EVENTS[0], "type"),
    "missing at": _without(EVENTS[0], "at"),
    "unknown type": {**EVENTS[0], "type": "node_restarted"},
    "type with other case": {**EVENTS[0], "type": "Node_Started"},
    "at without offset": {**EVENTS[0], "at": "2026-11-21T08:00:00"},
    "at with fraction, no offset": {**EVENTS[0], "at": "2026-11-21T08:00:00.250"},
    "at with space for T": {**EVENTS[0], "at": "2026-11-21 08:00:00Z"},
    "at date only": {**EVENTS[0], "at": "2026-11-21"},
    "at with compact offset": {**EVENTS[0], "at": "2026-11-21T08:00:00+0800"},
    "at hour 24": {**EVENTS[0], "at": "2026-11-21T24:00:00Z"},
    "at month 13": {**EVENTS[0], "at": "2026-13-21T08:00:00Z"},
    "at epoch number": {**EVENTS[0], "at": 1795248000},
    "node_started without node": _without(EVENTS[0], "node"),
    "node_completed without node": _without(EVENTS[3], "node"),
    "node_paused without node": _without(EVENTS[1], "node"),
    "non-string node": {**EVENTS[0], "node": 7},
    "non-object attrs": {**EVENTS[0], "attrs": ["city", "Lyon"]},
    "string attrs": {**EVENTS[0], "attrs": "city=Lyon"},
    "non-string segment": {**EVENTS[0], "segment": None},
    "non-string order_id": {**EVENTS[0], "order_id": 42},
    "not an object": [EVENTS[0]],
    "status_changed without status": _without(EVENTS[7], "status"),
    "status_changed with empty status": {**EVENTS[7], "status": ""},
    "status_changed with non-string status": {**EVENTS[7], "status": 3},
}


def test_status_is_only_read_on_status_changed_and_node_is_ignored_there():
    assert is_valid("workflow-event", {**EVENTS[0], "status": 3})  # an extra property elsewhere, as before
    assert is_valid("workflow-event", {**EVENTS[7], "node": "triage"})


@pytest.mark.parametrize("event", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_invalid_events(event):
    assert not is_valid("workflow-event", event)


# -------------------------------------------------------------------------------------------- warnings

WARNING = {
    "warning_id": "o1:site_survey:1:commitment_breached",
    "kind": "commitment_breached",
    "order_id": "o1", "process": "broadband_install", "node": "site_survey", "run": 1,
    "segment": "default", "owner": "field-ops", "policy_version": 3, "attrs": {"city": "Lyon"},
    "state": "in_progress_acceptable",
    "started_at": "2026-11-21T08:00:00Z", "crossed_at": "2026-11-21T12:00:00.000001Z",
    "detected_at": "2026-11-21T12:00:01.5Z",
    "elapsed_s": 14400, "commitment_s": 14400, "tolerance_s": 28800.0,
}

GOOD_WARNINGS = {
    "commitment_breached": WARNING,
    "owner null": {**WARNING, "owner": None},
    "approaching": {**WARNING, "kind": "approaching", "warning_id": "o1:site_survey:1:approaching",
                    "state": "in_progress_normal", "elapsed_s": 11520},
    "tolerance_breached": {**WARNING, "kind": "tolerance_breached", "state": "in_progress_warning",
                           "warning_id": "o1:site_survey:1:tolerance_breached", "elapsed_s": 28800},
    "resolved": {**WARNING, "kind": "resolved", "warning_id": "o1:site_survey:1:resolved",
                 "state": "completed_acceptable", "elapsed_s": 20000},
    "resolved by cancel": {**WARNING, "kind": "resolved", "warning_id": "o1:site_survey:1:resolved",
                           "state": "cancelled"},
    "order-level run, colon in order id": {**WARNING, "order_id": "A:17", "node": "__order__", "run": 2,
                                           "warning_id": "A:17:__order__:2:commitment_breached"},
    "graded approaching": {**WARNING, "kind": "approaching", "warning_id": "o1:site_survey:1:approaching@87.5",
                           "threshold": 0.875, "state": "in_progress_normal", "elapsed_s": 12600},
    "graded approaching, whole percent": {**WARNING, "kind": "approaching", "threshold": 0.5,
                                          "warning_id": "o1:site_survey:1:approaching@50", "state": "in_progress_normal"},
}


@pytest.mark.parametrize("warning", GOOD_WARNINGS.values(), ids=GOOD_WARNINGS.keys())
def test_valid_warnings(warning):
    validator("sla-warning").validate(warning)


BAD_WARNINGS = {
    "missing detected_at": _without(WARNING, "detected_at"),
    "missing warning_id": _without(WARNING, "warning_id"),
    "missing owner": _without(WARNING, "owner"),
    "unknown kind": {**WARNING, "kind": "breached"},
    "unknown state": {**WARNING, "state": "late"},
    "run 0": {**WARNING, "run": 0},
    "run as string": {**WARNING, "run": "1"},
    "commitment 0": {**WARNING, "commitment_s": 0},
    "negative elapsed": {**WARNING, "elapsed_s": -1},
    "crossed_at with offset, not UTC": {**WARNING, "crossed_at": "2026-11-21T20:00:00+08:00"},
    "detected_at without zone": {**WARNING, "detected_at": "2026-11-21T12:00:01"},
    "policy_version float": {**WARNING, "policy_version": 3.5},
    "owner number": {**WARNING, "owner": 3},
    "attrs list": {**WARNING, "attrs": []},
    "unexpected field": {**WARNING, "level": "acceptable"},
    "approaching not in_progress_normal": {**WARNING, "kind": "approaching", "state": "in_progress_acceptable"},
    "breach with ended state": {**WARNING, "state": "completed_warning"},
    "resolved while in progress": {**WARNING, "kind": "resolved", "state": "in_progress_warning"},
    "malformed warning_id": {**WARNING, "warning_id": "o1-site_survey-1"},
    "threshold on a breach": {**WARNING, "threshold": 0.5},
    "graded id without threshold": {**WARNING, "kind": "approaching", "state": "in_progress_normal",
                                    "warning_id": "o1:site_survey:1:approaching@50"},
    "threshold without graded id": {**WARNING, "kind": "approaching", "state": "in_progress_normal", "threshold": 0.5,
                                    "warning_id": "o1:site_survey:1:approaching"},
    "threshold 1": {**WARNING, "kind": "approaching", "state": "in_progress_normal", "threshold": 1,
                    "warning_id": "o1:site_survey:1:approaching@100"},
    "label with trailing zero": {**WARNING, "kind": "approaching", "state": "in_progress_normal", "threshold": 0.5,
                                 "warning_id": "o1:site_survey:1:approaching@50.0"},
}


@pytest.mark.parametrize("warning", BAD_WARNINGS.values(), ids=BAD_WARNINGS.keys())
def test_invalid_warnings(warning):
    assert not is_valid("sla-warning", warning)


# -------------------------------------------------------------------------------------------- outcomes

OUTCOME = {
    "order_id": "o1", "process": "broadband_install", "node": "installation", "run": 1,
    "segment": "enterprise", "owner": None, "policy_version": 1, "attrs": {},
    "state": "completed_normal", "started_at": "2026-11-21T08:00:00Z", "ended_at": "2026-11-22T08:00:00.25Z",
    "elapsed_s": 86400.25, "commitment_s": 129600, "tolerance_s": 259200,
}


@pytest.mark.parametrize("state", ["completed_normal", "completed_acceptable", "completed_warning", "cancelled"])
def test_valid_outcomes(state):
    validator("sla-outcome").validate({**OUTCOME, "state": state})
    validator("sla-outcome").validate({**OUTCOME, "state": state, "detected_at": "2026-11-22T08:00:02Z"})


BAD_OUTCOMES = {
    "in-progress state": {**OUTCOME, "state": "in_progress_normal"},
    "missing ended_at": _without(OUTCOME, "ended_at"),
    "missing state": _without(OUTCOME, "state"),
    "missing elapsed_s": _without(OUTCOME, "elapsed_s"),
    "ended_at not UTC": {**OUTCOME, "ended_at": "2026-11-22T09:00:00+01:00"},
    "tolerance 0": {**OUTCOME, "tolerance_s": 0},
    "warning field": {**OUTCOME, "kind": "resolved"},
}


@pytest.mark.parametrize("outcome", BAD_OUTCOMES.values(), ids=BAD_OUTCOMES.keys())
def test_invalid_outcomes(outcome):
    assert not is_valid("sla-outcome", outcome)


# ------------------------------------------------------------------------------------------ dead letters

DEADLETTER = {
    "reason": "malformed", "detail": "field `at` has no offset", "topic": "workflow.events",
    "partition": 3, "offset": 1207, "received_at": "2026-11-21T08:00:00.123Z",
    "raw": '{"event_id": "e1", "at": "2026-11-21T08:00:00"}',
}
REASONS = ["malformed", "duplicate_event", "unknown_process", "unknown_node", "out_of_order", "invalid_transition"]


@pytest.mark.parametrize("reason", REASONS)
def test_valid_deadletters(reason):
    validator("sla-deadletter").validate({**DEADLETTER, "reason": reason})


def test_deadletter_raw_encoding():
    assert is_valid("sla-deadletter", {**DEADLETTER, "raw": "/w==", "raw_encoding": "base64"})
    assert is_valid("sla-deadletter", {**DEADLETTER, "raw_encoding": "utf-8"})
    assert not is_valid("sla-deadletter", {**DEADLETTER, "raw_encoding": "hex"})


def test_deadletter_cut_raw():
    assert is_valid("sla-deadletter", {**DEADLETTER, "raw_truncated": True, "raw_bytes": 1_000_000})
    assert not is_valid("sla-deadletter", {**DEADLETTER, "raw_truncated": False})
    assert not is_valid("sla-deadletter", {**DEADLETTER, "raw_bytes": -1})


BAD_DEADLETTERS = {
    "unknown reason": {**DEADLETTER, "reason": "bad"},
    "missing raw": _without(DEADLETTER, "raw"),
    "missing reason": _without(DEADLETTER, "reason"),
    "missing offset": _without(DEADLETTER, "offset"),
    "negative partition": {**DEADLETTER, "partition": -1},
    "offset string": {**DEADLETTER, "offset": "1207"},
    "received_at local": {**DEADLETTER, "received_at": "2026-11-21T08:00:00"},
    "raw bytes as list": {**DEADLETTER, "raw": [123, 125]},
}


@pytest.mark.parametrize("letter", BAD_DEADLETTERS.values(), ids=BAD_DEADLETTERS.keys())
def test_invalid_deadletters(letter):
    assert not is_valid("sla-deadletter", letter)


# ------------------------------------------------------------------------------------ ticks and policies


def test_ticks():
    assert is_valid("sla-tick", {"now": "2026-11-21T08:00:00.123456Z"})
    assert not is_valid("sla-tick", {"now": "2026-11-21T08:00:00+00:00"})
    assert not is_valid("sla-tick", {"now": 1795248000})
    assert not is_valid("sla-tick", {})


POLICY = {
    "process": "broadband_install", "version": 3, "source": "broadband_install.yaml",
    "document": {"process": "broadband_install", "version": 3, "calendar": "cn-office",
                 "nodes": {"site_survey": {"commitment": "4h", "tolerance": "8h", "owner": "field-ops"}}},
    "calendars": {"cn-office": {"timezone": "Asia/Shanghai", "hours": {"mon": ["09:00-12:00"]}}},
    "published_at": "2026-11-20T00:00:00Z",
}


def test_policies():
    validator("sla-policy").validate(POLICY)
    validator("sla-policy").validate({**POLICY, "calendars": {}})
    for key in POLICY:
        assert not is_valid("sla-policy", _without(POLICY, key)), key
    assert not is_valid("sla-policy", {**POLICY, "version": "3"})
    assert not is_valid("sla-policy", {**POLICY, "document": "process: x"})
    assert not is_valid("sla-policy", {**POLICY, "calendars": {"cn-office": "Asia/Shanghai"}})
    assert not is_valid("sla-policy", None)  # a tombstone is not a value
    assert "tombstone" in load_schema("sla.policies")["description"]
