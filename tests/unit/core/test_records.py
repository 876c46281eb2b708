"""The warning and outcome records: the one-literal fast paths give the same fields, in the same order, as the
general composition (`run_fields` + `_judged`) the contract's field lists describe."""

from __future__ import annotations

import orjson
import pytest

from monitor.core.engine import Engine, load_state
from monitor.core.records import (
    RUN_FIELDS,
    WARNING_FIELDS,
    _judged,
    outcome_record,
    run_fields,
    warning_record,
)
from monitor.core.vocabulary import CROSSING_KINDS

from ..helpers import policies
from .test_codec import FORMAT_1, FORMAT_2, OFFICE, PLAIN, RICH


def states():
    yield load_state(FORMAT_1, Engine(policies(PLAIN, calendars=OFFICE)))
    yield load_state(FORMAT_2, Engine(policies(RICH)))


@pytest.mark.parametrize("state", list(states()), ids=["format1", "format2"])
def test_outcome_record_is_run_fields_then_judged(state):
    for run in state.runs.values():
        for run_state, elapsed in (("met", 10), ("breached", 7_200_000_001), ("cancelled", 0)):
            general = _judged(run_fields(state, run), run, run_state, "ended_at", 1795252800123456, elapsed)
            fast = outcome_record(state, run, run_state, 1795252800123456, elapsed)
            assert orjson.dumps(fast) == orjson.dumps(general)  # the same fields, values and order
            assert list(fast)[:len(RUN_FIELDS)] == list(RUN_FIELDS)


@pytest.mark.parametrize("state", list(states()), ids=["format1", "format2"])
def test_warning_record_fields_in_contract_order(state):
    for run in state.runs.values():
        for kind in CROSSING_KINDS[1:]:
            rec = warning_record(state, run, kind, "breached", 1795252800000000, 3_600_000_000)
            assert [f for f in WARNING_FIELDS if f != "detected_at"] == list(rec)
            general = {"warning_id": rec["warning_id"], "kind": kind, **run_fields(state, run)}
            general = _judged(general, run, "breached", "crossed_at", 1795252800000000, 3_600_000_000)
            assert orjson.dumps(rec) == orjson.dumps(general)
