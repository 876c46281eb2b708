"""`slamon import xes --mode sojourn` and a `status_changed` stream give the same runs (CONTRACTS.md sections 11, 12).

One status-change log of tickets, written twice: as an XES file imported in sojourn mode (node events, replayed
under a policy whose nodes are named after the statuses) and as `status_changed` events (replayed under the same
policy plus `statuses:` mapping each status to its node and the final one to `{end: completed}`). The replay
summaries (per node: counts of the seven states, duration statistics) and the warnings must be the same.

The log keeps to statuses both sides treat alike: no pause status (sojourn mode has no pause), no status repeated
back to back (sojourn mode ends the run and starts a new one; a status of the current run's node does nothing), and
every ticket ends in the final status (sojourn mode completes every trace at its last event; a stream without an
`end` status leaves its last run open). One difference cannot be avoided: sojourn mode also gives the final status
a run of no time (started and completed at the last event), where `{end: completed}` starts no run; the test checks
those runs are exactly that and leaves their summary row out of the comparison.
"""

from __future__ import annotations

import orjson

from monitor.cli import main as slamon
from monitor.core.events import event_from_object
from monitor.core.instants import parse_instant
from monitor.core.replay import replay

from ..helpers import policies
from .test_xes import trace, xes_event

PROCESS = "tickets"
NODES = {"New": {"commitment": "30m", "tolerance": "1h"},
         "In Progress": {"commitment": "4h", "tolerance": "8h"},
         "Waiting": {"commitment": "1d", "tolerance": "2d"},
         "Resolved": {"commitment": "1m", "tolerance": "2m"}}
POLICY = {"process": PROCESS, "early_warning": 0.8, "order": {"commitment": "1d", "tolerance": "2d"}, "nodes": NODES}
STATUSES = {"New": "New", "In Progress": "In Progress", "Waiting": "Waiting", "Resolved": {"end": "completed"}}
NOW = parse_instant("2026-03-06T00:00:00Z")

TICKETS = {  # status changes per ticket, in time order (UTC)
    "T1": [("New", "2026-03-02T08:00:00Z"), ("In Progress", "2026-03-02T08:20:00Z"),
           ("Waiting", "2026-03-02T10:00:00Z"), ("In Progress", "2026-03-02T14:00:00Z"),
           ("Resolved", "2026-03-02T15:00:00Z")],
    "T2": [("New", "2026-03-02T09:00:00Z"), ("In Progress", "2026-03-02T10:30:00Z"),  # New: tolerance breached
           ("Resolved", "2026-03-02T16:30:00Z")],  # In Progress: 6h, commitment breached
    "T3": [("New", "2026-03-02T09:00:00Z"), ("In Progress", "2026-03-02T09:10:00Z"),
           ("Waiting", "2026-03-02T09:30:00Z"), ("In Progress", "2026-03-03T12:00:00Z"),  # Waiting 26.5h
           ("Waiting", "2026-03-03T13:00:00Z"), ("In Progress", "2026-03-04T08:00:00Z"),
           ("Resolved", "2026-03-04T09:30:00Z")],  # the order: 48.5h, tolerance breached
    "T4": [("New", "2026-03-02T11:00:00Z"), ("In Progress", "2026-03-02T11:05:00Z"),
           ("Resolved", "2026-03-02T11:05:00Z")],  # resolved at the instant work started: a run of no time
}


def sojourn_events(tmp_path) -> list:
    """The tickets as an XES log, through `slamon import xes --mode sojourn`, as engine events."""
    log = tmp_path / "tickets.xes"
    log.write_text('<log xes.version="2.0">' + "".join(
        trace(ticket, *(xes_event(status, None, at) for status, at in changes))
        for ticket, changes in TICKETS.items()) + "</log>")
    out = tmp_path / "tickets.jsonl"
    assert slamon(["import", "xes", str(log), "--mode", "sojourn", "--out", str(out)]) == 0
    return [event_from_object(orjson.loads(line)) for line in out.read_bytes().splitlines()]


def status_events() -> list:
    """The tickets as `status_changed` events, in time order."""
    objs = [{"event_id": f"{ticket}:{i}", "order_id": ticket, "process": PROCESS, "type": "status_changed",
             "status": status, "at": at}
            for ticket, changes in TICKETS.items() for i, (status, at) in enumerate(changes)]
    objs.sort(key=lambda o: parse_instant(o["at"]))  # stable: a ticket's changes keep their order at ties
    return [event_from_object(o) for o in objs]


def test_sojourn_import_and_status_changes_give_the_same_runs(tmp_path):
    by_nodes = replay(policies(POLICY), lambda: sojourn_events(tmp_path), NOW)
    by_status = replay(policies({**POLICY, "statuses": STATUSES}), status_events, NOW)

    assert set(by_nodes["invalid"].values()) == {0} and set(by_status["invalid"].values()) == {0}

    # the one expected difference: sojourn mode's run of no time of the final status, one per ticket
    rows = {r["node"]: r for r in by_nodes["summary"]}
    final = rows.pop("Resolved")
    assert final["completed_normal"] == len(TICKETS) and final["duration_s"]["max"] == 0
    assert not any(w["node"] == "Resolved" for w in by_nodes["warnings"])

    assert rows == {r["node"]: r for r in by_status["summary"]}
    assert set(rows) == {"New", "In Progress", "Waiting", "__order__"}

    assert by_nodes["warnings"] == by_status["warnings"]  # the whole records (no attrs, segments: same runs)
    kinds = [(w["order_id"], w["node"], w["run"], w["kind"], w["crossed_at"]) for w in by_status["warnings"]]
    assert ("T2", "New", 1, "tolerance_breached", "2026-03-02T10:00:00Z") in kinds
    assert ("T2", "In Progress", 1, "commitment_breached", "2026-03-02T14:30:00Z") in kinds
    assert ("T3", "Waiting", 1, "commitment_breached", "2026-03-03T09:30:00Z") in kinds
    assert ("T3", "__order__", 1, "tolerance_breached", "2026-03-04T09:00:00Z") in kinds
