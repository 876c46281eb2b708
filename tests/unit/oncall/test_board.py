"""The board's merge (the Lua script) against a real Redis: order independence, when a breach is open, the owner
and process indexes, and the expiry of finished orders."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from monitor.oncall import keys
from monitor.oncall.board import MERGE, MERGED_FIELDS, Board, script_failed_on_record

RETENTION = 3600
STARTED = "2024-06-03T08:00:00Z"


def warning(kind: str, crossed_at: str, *, order: str = "o-1", node: str = "n", run: int = 1, process: str = "p",
            owner: str | None = "field-ops", state: str = "in_progress_acceptable", elapsed: float = 2.0) -> dict:
    return {"warning_id": f"{order}:{node}:{run}:{kind}", "kind": kind, "order_id": order, "process": process,
            "node": node, "run": run, "segment": "gold", "owner": owner, "policy_version": 3, "attrs": {"site": "x"},
            "state": state, "started_at": STARTED, "crossed_at": crossed_at, "detected_at": crossed_at,
            "elapsed_s": elapsed, "commitment_s": 2.0, "tolerance_s": 60.0}


def outcome(ended_at: str, state: str, *, order: str = "o-1", node: str = "n", run: int = 1, process: str = "p",
            owner: str | None = "field-ops", elapsed: float = 90.0) -> dict:
    return {"order_id": order, "process": process, "node": node, "run": run, "segment": "gold", "owner": owner,
            "policy_version": 3, "attrs": {"site": "x"}, "state": state, "started_at": STARTED, "ended_at": ended_at,
            "elapsed_s": elapsed, "commitment_s": 2.0, "tolerance_s": 60.0}


COMMITMENT = warning("commitment_breached", "2024-06-03T08:00:02Z")
TOLERANCE = warning("tolerance_breached", "2024-06-03T08:01:00Z", state="in_progress_warning", elapsed=60.0)
RESOLVED = warning("resolved", "2024-06-03T08:01:30Z", state="completed_warning", elapsed=90.0)
OUTCOME = outcome("2024-06-03T08:01:30Z", "completed_warning")


def apply(on_redis, ns: str, records: list[tuple[str, dict]]) -> None:
    async def body(r):
        board = Board(r, ns, RETENTION)
        for rec in records:  # one batch per record, as when the two topics interleave record by record
            await board.apply([rec])

    on_redis(body)


def dump(r, ns: str) -> dict:
    """Every key of the namespace (without it) -> its content; hashes' and strings' JSON parsed."""
    out: dict = {}
    for key in r.scan_iter(f"{ns}:*"):
        name = key.decode()[len(ns):]
        kind = r.type(key).decode()
        if kind == "hash":
            out[name] = {f.decode(): json.loads(v) for f, v in r.hgetall(key).items()}
        elif kind == "zset":
            out[name] = r.zrange(key, 0, -1, withscores=True)
        else:
            out[name] = json.loads(r.get(key))
        out[name + " expires"] = r.ttl(key) > 0
    return out


def run_entry(r, ns: str, order: str = "o-1", field: str = "n:1") -> dict:
    return json.loads(r.hget(keys.order(ns, order), field))


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_script_merges_the_run_fields_of_the_contract_and_the_limits():
    assert MERGED_FIELDS == ("order_id", "process", "node", "run", "segment", "owner", "policy_version", "attrs",
                             "started_at", "commitment_s", "tolerance_s")
    assert ("ipairs({'order_id', 'process', 'node', 'run', 'segment', 'owner', 'policy_version', 'attrs', "
            "'started_at', 'commitment_s', 'tolerance_s'})") in MERGE


@pytest.mark.integration
@pytest.mark.parametrize("at", range(4))
def test_an_outcome_anywhere_among_the_warnings_gives_the_same_board(on_redis, sync_redis, ns, at):
    warnings = [("warning", COMMITMENT), ("warning", TOLERANCE), ("warning", RESOLVED)]
    in_order = warnings + [("outcome", OUTCOME)]
    moved = warnings[:at] + [("outcome", OUTCOME)] + warnings[at:]
    apply(on_redis, f"{ns}a", in_order)
    apply(on_redis, f"{ns}b", moved)
    assert dump(sync_redis, f"{ns}a") == dump(sync_redis, f"{ns}b")


@pytest.mark.integration
def test_a_late_crossing_does_not_reopen_an_ended_run(on_redis, sync_redis, ns):
    apply(on_redis, f"{ns}a", [("warning", COMMITMENT), ("outcome", outcome("2024-06-03T08:00:30Z",
                                                                             "completed_acceptable"))])
    apply(on_redis, f"{ns}b", [("outcome", outcome("2024-06-03T08:00:30Z", "completed_acceptable")),
                               ("warning", COMMITMENT)])
    a, b = dump(sync_redis, f"{ns}a"), dump(sync_redis, f"{ns}b")
    assert a == b
    assert sync_redis.zcard(keys.breaches(f"{ns}b")) == 0
    assert run_entry(sync_redis, f"{ns}b")["state"] == "completed_acceptable"


@pytest.mark.integration
def test_replaying_the_records_changes_nothing(on_redis, sync_redis, ns):
    records = [("warning", COMMITMENT), ("warning", TOLERANCE)]
    apply(on_redis, ns, records)
    before = dump(sync_redis, ns)
    apply(on_redis, ns, records)
    assert dump(sync_redis, ns) == before


@pytest.mark.integration
def test_a_breach_is_open_from_its_crossing_until_resolved(on_redis, sync_redis, ns):
    r = sync_redis
    apply(on_redis, ns, [("warning", warning("approaching", "2024-06-03T08:00:01Z", state="in_progress_normal"))])
    assert r.zcard(keys.breaches(ns)) == 0
    assert (run_entry(r, ns)["level"], run_entry(r, ns)["state"]) == ("normal", "in_progress_normal")

    apply(on_redis, ns, [("warning", COMMITMENT)])
    wid = COMMITMENT["warning_id"]
    assert r.zrange(keys.breaches(ns), 0, -1, withscores=True) == [(wid.encode(), epoch(COMMITMENT["crossed_at"]))]
    stored = json.loads(r.get(keys.breach(ns, wid)))
    assert {k: stored[k] for k in COMMITMENT} == COMMITMENT
    entry = run_entry(r, ns)
    assert (entry["level"], entry["state"], entry["crossings"]) == (
        "acceptable", "in_progress_acceptable", ["approaching", "commitment_breached"])
    assert {k: entry[k] for k in MERGED_FIELDS} == {k: COMMITMENT[k] for k in MERGED_FIELDS}
    assert "ended_at" not in entry
    assert r.ttl(keys.order(ns, "o-1")) == -1  # open: never expires

    apply(on_redis, ns, [("warning", TOLERANCE)])
    assert [m.decode() for m in r.zrange(keys.breaches(ns), 0, -1)] == [wid, TOLERANCE["warning_id"]]
    assert (run_entry(r, ns)["level"], run_entry(r, ns)["state"]) == ("warning", "in_progress_warning")

    apply(on_redis, ns, [("warning", RESOLVED)])
    assert r.zcard(keys.breaches(ns)) == 0
    assert r.zcard(keys.breaches_by_owner(ns, "field-ops")) == 0
    assert r.zcard(keys.breaches_by_process(ns, "p")) == 0
    assert not r.exists(keys.breach(ns, wid), keys.breach(ns, TOLERANCE["warning_id"]))
    entry = run_entry(r, ns)
    assert (entry["ended_at"], entry["state"], entry["level"], entry["elapsed_s"]) == (
        RESOLVED["crossed_at"], "completed_warning", "warning", 90)
    assert 0 < r.ttl(keys.order(ns, "o-1")) <= RETENTION


@pytest.mark.integration
def test_an_outcome_closes_the_breaches_of_its_run(on_redis, sync_redis, ns):
    apply(on_redis, ns, [("warning", COMMITMENT), ("warning", TOLERANCE), ("outcome", OUTCOME)])
    assert sync_redis.zcard(keys.breaches(ns)) == 0
    assert run_entry(sync_redis, ns)["ended_at"] == OUTCOME["ended_at"]


@pytest.mark.integration
def test_breaches_are_indexed_by_owner_and_process(on_redis, sync_redis, ns):
    a = warning("commitment_breached", "2024-06-03T08:00:02Z", order="o-a", process="install", owner="team-a")
    b = warning("commitment_breached", "2024-06-03T08:00:03Z", order="o-b", process="repair", owner=None)
    c = warning("tolerance_breached", "2024-06-03T08:00:04Z", order="o-a", node="m", process="install",
                owner="team-a", state="in_progress_warning")
    apply(on_redis, ns, [("warning", a), ("warning", b), ("warning", c)])

    def members(key: str) -> list[str]:
        return [m.decode() for m in sync_redis.zrange(key, 0, -1)]

    assert members(keys.breaches(ns)) == [a["warning_id"], b["warning_id"], c["warning_id"]]
    assert members(keys.breaches_by_owner(ns, "team-a")) == [a["warning_id"], c["warning_id"]]
    assert members(keys.breaches_by_owner(ns, None)) == [b["warning_id"]]
    assert keys.breaches_by_owner(ns, None).endswith(":owner:-")
    assert members(keys.breaches_by_process(ns, "install")) == [a["warning_id"], c["warning_id"]]
    assert members(keys.breaches_by_process(ns, "repair")) == [b["warning_id"]]


@pytest.mark.integration
def test_an_order_expires_only_when_all_its_runs_ended(on_redis, sync_redis, ns):
    order = keys.order(ns, "o-1")
    first = warning("commitment_breached", "2024-06-03T08:00:02Z", node="n")
    second = warning("commitment_breached", "2024-06-03T08:00:05Z", node="m")
    apply(on_redis, ns, [("warning", first), ("warning", second),
                         ("outcome", outcome("2024-06-03T08:00:30Z", "completed_acceptable", node="n"))])
    assert sync_redis.ttl(order) == -1  # run m is still open
    apply(on_redis, ns, [("outcome", outcome("2024-06-03T08:00:40Z", "completed_acceptable", node="m"))])
    assert 0 < sync_redis.ttl(order) <= RETENTION
    # a new run of the order opens: it no longer expires
    apply(on_redis, ns, [("warning", warning("approaching", "2024-06-03T08:01:00Z", node="n", run=2))])
    assert sync_redis.ttl(order) == -1


def test_the_prefixes_in_the_script_are_those_of_the_key_layout():
    ns = "slamon:x"
    assert keys.breach_prefix(ns) + "w" == keys.breach(ns, "w")
    assert keys.owner_index_prefix(ns) + "team" == keys.breaches_by_owner(ns, "team")
    assert keys.owner_index_prefix(ns) + "-" == keys.breaches_by_owner(ns, None)
    assert keys.process_index_prefix(ns) + "p" == keys.breaches_by_process(ns, "p")


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.mark.integration
def test_records_it_cannot_merge_are_refused_alone_and_the_batch_merged(on_redis, sync_redis, ns):
    # a key of the wrong type makes the script fail on that record (WRONGTYPE: not a passing state of Redis)
    sync_redis.set(keys.order(ns, "o-taken"), "not a hash")
    taken = warning("commitment_breached", "2024-06-03T08:00:03Z", order="o-taken")
    # valid JSON (orjson reads 1024 levels), too deep to encode again (orjson writes 254)
    deep = warning("commitment_breached", "2024-06-03T08:00:03Z", order="o-deep")
    deep["attrs"] = nested(300)
    other = warning("commitment_breached", "2024-06-03T08:00:04Z", order="o-2")

    async def body(r):
        return await Board(r, ns, RETENTION).apply([("warning", COMMITMENT), ("warning", taken), ("warning", deep),
                                                    ("warning", other)])

    (i, wrongtype), (j, encode) = on_redis(body)
    assert (i, j) == (1, 2)
    assert wrongtype.startswith("WRONGTYPE") and "script" in wrongtype
    assert encode.startswith("cannot encode the record")
    assert [m.decode() for m in sync_redis.zrange(keys.breaches(ns), 0, -1)] == [COMMITMENT["warning_id"],
                                                                                  other["warning_id"]]


def test_only_a_script_error_on_the_record_is_the_records_fault():
    from redis.exceptions import NoScriptError, OutOfMemoryError, ReadOnlyError, ResponseError

    assert script_failed_on_record(ResponseError(
        "user_script:1: attempt to concatenate a nil value script: a954e05, on @user_script:1."))
    assert script_failed_on_record(ResponseError(
        "WRONGTYPE Operation against a key holding the wrong kind of value script: ca97acc, on @user_script:1."))
    assert script_failed_on_record(ResponseError(
        "Lua redis lib command arguments must be strings or integers script: f45f1e3, on @user_script:1."))
    # a state of the server that passes: retried
    assert not script_failed_on_record(ResponseError(
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
        "script: ab12, on @user_script:10."))
    assert not script_failed_on_record(OutOfMemoryError("command not allowed when used memory > 'maxmemory'. "
                                                        "script: ab12, on @user_script:10."))
    assert not script_failed_on_record(ReadOnlyError("You can't write against a read only replica. script: ab12"))
    assert not script_failed_on_record(NoScriptError("No matching script. Please use EVAL."))
    assert not script_failed_on_record(ResponseError("wrong number of arguments for 'hset' command"))
