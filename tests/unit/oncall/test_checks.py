"""What the board and the notifier accept from sla.warnings and sla.outcomes: every record the monitor emits passes,
and each kind of unusable record is refused with its reason (the vocabulary of checks.py)."""

from __future__ import annotations

import orjson
import pytest

from monitor.core.engine import Engine
from monitor.core.events import decode_event
from monitor.core.instants import US, format_instant, parse_instant
from monitor.core.policies import load_policy_dir
from monitor.core.records import outcome_record
from monitor.core.replay import ReplaySink
from monitor.oncall.checks import REASONS, Unusable, check_outcome, check_warning, decode

POLICY = """process: p
version: 2
early_warning: 0.5
order: {commitment: 3s, tolerance: 5s}
nodes:
  n: {commitment: 2s, tolerance: 4s, owner: field-ops}
  m: {commitment: 1h, tolerance: 2h}
"""
T0 = parse_instant("2024-06-03T08:00:00Z")


class Capture(ReplaySink):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[dict] = []

    def outcome(self, state, run, run_state, ended_at, elapsed):
        self.outcomes.append(outcome_record(state, run, run_state, ended_at, elapsed))


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> tuple[list[dict], list[dict]]:
    """(warnings, outcomes) the monitor's engine emits for one order: every kind, completed and cancelled runs."""
    d = tmp_path_factory.mktemp("policies")
    (d / "p.yaml").write_text(POLICY)
    policies, _ = load_policy_dir(d)
    engine, sink, state = Engine(policies), Capture(), None

    def event(i: int, type_: str, seconds: float, **extra) -> None:
        nonlocal state
        ev = decode_event(orjson.dumps({"event_id": f"e{i}", "order_id": "o:1", "process": "p", "type": type_,
                                        "at": format_instant(T0 + int(seconds * US)), **extra}))
        if state is not None:
            engine.advance(state, ev.at, sink)
        new, rejection = engine.apply(state, ev, sink)
        assert rejection is None
        state = new

    event(1, "node_started", 0, node="n", segment="gold", attrs={"site": "x"})
    event(2, "node_started", 0, node="m")
    event(3, "node_completed", 10, node="n")
    event(4, "node_cancelled", 11, node="m")
    event(5, "order_completed", 12)
    return [w for _, _, w in sink.warnings], sink.outcomes


def test_every_record_the_monitor_emits_passes(emitted):
    warnings, outcomes = emitted
    assert {w["kind"] for w in warnings} == {"approaching", "commitment_breached", "tolerance_breached", "resolved"}
    assert {o["state"] for o in outcomes} == {"completed_warning", "cancelled"}
    for w in warnings:
        assert check_warning(w) is w
        assert check_warning({**w, "detected_at": w["crossed_at"], "owner": None}) is not None
    for o in outcomes:
        assert check_outcome(o) is o


def reason(check, value) -> str:
    with pytest.raises(Unusable) as caught:
        check(value)
    assert caught.value.reason in REASONS
    return caught.value.reason


@pytest.mark.parametrize("raw,why", [(b"\xff\xfe{}", "not_utf8"), (b"{not json", "not_json"), (b"", "not_json"),
                                     (None, "not_json"), (b'{"a": NaN}', "not_json"), (b"1e400", "not_json"),
                                     (b'"\\ud800"', "not_json")])
def test_bytes_that_are_not_json(raw, why):
    assert reason(decode, raw) == why


def test_json_is_decoded():
    assert decode(b'{"a": [1, null]}') == {"a": [1, None]}
    assert decode(b"null") is None


@pytest.mark.parametrize("value", [None, [], [{"kind": "resolved"}], 42, 1.5, "text", True])
def test_a_value_that_is_not_an_object(value):
    assert reason(check_warning, value) == "not_an_object"
    assert reason(check_outcome, value) == "not_an_object"


def test_a_missing_field_is_named(emitted):
    warnings, outcomes = emitted
    assert reason(check_warning, {}) == "missing_field"
    assert reason(check_outcome, {}) == "missing_field"
    for field in ("warning_id", "kind", "order_id", "node", "run", "process", "owner", "crossed_at", "state",
                  "elapsed_s", "commitment_s", "tolerance_s", "started_at", "segment", "policy_version", "attrs"):
        with pytest.raises(Unusable, match=f"no {field}"):
            check_warning({k: v for k, v in warnings[0].items() if k != field})
    for field in ("order_id", "node", "run", "ended_at", "state", "elapsed_s"):
        with pytest.raises(Unusable, match=f"no {field}"):
            check_outcome({k: v for k, v in outcomes[0].items() if k != field})


@pytest.mark.parametrize("field,value", [
    ("run", "x"), ("run", 1.0), ("run", True), ("run", None), ("crossed_at", 5), ("order_id", None),
    ("order_id", 7), ("node", ["n"]), ("process", {}), ("kind", None), ("warning_id", 3), ("owner", 5),
    ("owner", {"team": "x"}), ("segment", None), ("elapsed_s", "2"), ("commitment_s", None), ("tolerance_s", False),
    ("policy_version", "1"), ("attrs", []), ("state", 1), ("started_at", None)])
def test_a_field_of_the_wrong_type(emitted, field, value):
    warning = emitted[0][1]
    assert reason(check_warning, {**warning, field: value}) == "wrong_type"
    if field not in ("crossed_at", "kind", "warning_id"):
        assert reason(check_outcome, {**emitted[1][0], field: value}) == "wrong_type"


@pytest.mark.parametrize("field,value", [
    ("kind", "exploded"), ("state", "done"), ("run", 0), ("run", -1), ("crossed_at", "yesterday"),
    ("crossed_at", "2024-06-03T08:00:00"), ("crossed_at", "2024-02-30T08:00:00Z"), ("started_at", ""),
    ("warning_id", "o:1:n:1"), ("warning_id", "x:n:1:commitment_breached")])
def test_a_value_outside_the_contract(emitted, field, value):
    warning = next(w for w in emitted[0] if w["kind"] == "commitment_breached" and w["node"] == "n")
    assert reason(check_warning, {**warning, field: value}) == "bad_value"


def test_the_warning_id_must_be_that_of_its_fields(emitted):
    warning = next(w for w in emitted[0] if w["kind"] == "commitment_breached" and w["node"] == "n")
    assert warning["warning_id"] == "o:1:n:1:commitment_breached"
    for field, value in (("order_id", "o:2"), ("node", "m"), ("run", 2), ("kind", "tolerance_breached")):
        assert reason(check_warning, {**warning, field: value}) == "bad_value"


@pytest.mark.parametrize("field,value", [("state", "in_progress_warning"), ("ended_at", "soon"), ("run", 0)])
def test_an_outcome_value_outside_the_contract(emitted, field, value):
    assert reason(check_outcome, {**emitted[1][0], field: value}) == "bad_value"


# ---------------------------------------------------------------- graded early warnings (CONTRACTS section 12)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> list[dict]:
    """The approaching warnings the engine emits under `early_warning: [0.29, 0.5, 0.875]`."""
    d = tmp_path_factory.mktemp("graded")
    (d / "p.yaml").write_text(POLICY.replace("early_warning: 0.5", "early_warning: [0.29, 0.5, 0.875]"))
    engine, sink = Engine(load_policy_dir(d)[0]), Capture()
    state, _ = engine.apply(None, decode_event(orjson.dumps({"event_id": "e1", "order_id": "o:1", "process": "p",
                                                             "type": "node_started", "node": "n",
                                                             "at": format_instant(T0)})), sink)
    engine.advance(state, T0 + 10 * US, sink)
    return [w for _, _, w in sink.warnings if w["kind"] == "approaching"]


def test_graded_early_warnings_the_monitor_emits_pass(graded):
    assert [(w["warning_id"], w["threshold"]) for w in graded if w["node"] == "n"] == [
        ("o:1:n:1:approaching@29", 0.29), ("o:1:n:1:approaching@50", 0.5), ("o:1:n:1:approaching@87.5", 0.875)]
    from jsonschema import Draft202012Validator

    from monitor.catalogue import load_schema

    schema = Draft202012Validator(load_schema("sla.warnings"))
    for w in graded:
        assert check_warning(w) is w
        schema.validate({**w, "detected_at": w["crossed_at"]})  # the topic's schema says the same


@pytest.mark.parametrize("change,why", [
    ({"threshold": "0.5"}, "wrong_type"), ({"threshold": True}, "wrong_type"), ({"threshold": [0.5]}, "wrong_type"),
    ({"threshold": 1.5, "warning_id": "o:1:n:1:approaching@150"}, "bad_value"),
    ({"threshold": 0.5}, "bad_value"),  # the id says 29
    ({"threshold": None}, "bad_value"),  # a graded id needs its threshold
    ({"kind": "commitment_breached", "state": "in_progress_acceptable"}, "bad_value"),  # only approaching has one
    ({"warning_id": "o:1:n:1:approaching@29.0"}, "bad_value"),
])
def test_a_graded_warning_outside_the_contract(graded, change, why):
    first = next(w for w in graded if w["node"] == "n")
    assert reason(check_warning, {**first, **change}) == why


def test_approaching_warnings_are_not_alerts():
    from monitor.oncall.alerts import ALERTNAMES

    assert "approaching" not in ALERTNAMES  # the notifier sends breaches only, graded early warnings included
