"""The policy book of sla.policies: no message, however bad, stops the feed or changes the running policies."""

from __future__ import annotations

import logging

import orjson
import pytest

from monitor.stream.policyfeed import PolicyBook

GOOD = {"process": "p", "version": 1, "source": "p.yaml", "calendars": {},
        "document": {"process": "p", "nodes": {"n": {"commitment": "1h", "tolerance": "2h"}}}}


def value(doc) -> bytes:
    return orjson.dumps(doc)


@pytest.mark.parametrize("raw", [
    b"not json", b"\xff\xfe", b"null", b"[1, 2]", b"5", value({"no": "document"}),
    value({**GOOD, "document": {"process": "p", "nodes": {"n": {"commitment": "2h", "tolerance": "1h"}}}}),
    value({**GOOD, "document": {"process": "p", "nodes": 5}}),
    value({**GOOD, "document": {"process": "p", "calendar": "nope", "nodes": {"n": {"commitment": "1h",
                                                                                   "tolerance": "2h"}}}}),
    value({**GOOD, "calendars": "not a mapping"}),
])
def test_a_bad_message_is_rejected_and_the_running_policies_stay(raw, caplog):
    book = PolicyBook()
    assert book.apply(b"p", value(GOOD))
    before = book.policies
    with caplog.at_level(logging.ERROR, logger="slamon.policies"):
        assert book.apply(b"p", raw) is False
    assert book.policies is before and book.policies.get("p").nodes["n"].commitment == 3600 * 10**6
    assert any("rejected" in r.getMessage() for r in caplog.records)
    # and the next good message is applied
    assert book.apply(b"p", value({**GOOD, "document": {**GOOD["document"], "version": 2}}))
    assert book.policies.get("p").version == 2


def test_a_tombstone_removes_a_process_and_an_unknown_one_changes_nothing():
    book = PolicyBook()
    book.apply(b"p", value(GOOD))
    assert book.apply(b"other", None) is False
    assert book.apply(b"p", None) is True and book.policies.get("p") is None


def test_a_key_that_is_not_utf8_does_not_stop_the_feed():
    book = PolicyBook()
    assert book.apply(b"\xff", value(GOOD)) in (True, False)


def test_a_published_policy_carries_every_calendar_it_names_and_reads_back_the_same():
    # calendars per node, per segment and per segment-and-node (CONTRACTS section 12) reach every worker
    from pathlib import Path

    from jsonschema import Draft202012Validator

    from monitor.catalogue import load_schema
    from monitor.core.policies import load_policy_dir
    from monitor.stream.policyfeed import policy_messages

    demo, _ = load_policy_dir(Path(__file__).resolve().parents[3] / "deploy" / "demo" / "policies")
    messages = dict(policy_messages(demo, 1_795_248_000_000_000))
    published = {key: orjson.loads(v) for key, v in messages.items()}
    assert set(published[b"broadband_install"]["calendars"]) == {"field-crews", "enterprise-desk", "network-noc"}
    assert set(published[b"support_ticket"]["calendars"]) == {"network-noc"}
    for doc in published.values():
        Draft202012Validator(load_schema("sla.policies")).validate(doc)
    book = PolicyBook()
    for key, raw in messages.items():
        assert book.apply(key, raw)
    for name, policy in demo.policies.items():
        again = book.policies.get(name)
        assert (again.nodes, again.segments, again.order_segments, again.matchers, again.statuses) == (
            policy.nodes, policy.segments, policy.order_segments, policy.matchers, policy.statuses)
