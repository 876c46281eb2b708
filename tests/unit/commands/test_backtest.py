"""`slamon backtest`: the JSON of section 9, the table, and bad input."""

from __future__ import annotations

import zlib

import orjson
import pytest

from monitor.cli import main as slamon

from ..runs_oracle import POLICY_YAML, generate, write_events, write_policies


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        slamon(["backtest", "--help"])
    out = capsys.readouterr().out
    assert "example" in out and "slamon backtest --policies" in out


def test_json_and_table(tmp_path, capsysbinary):
    current = str(write_policies(tmp_path / "current"))
    candidate = str(write_policies(tmp_path / "candidate", POLICY_YAML.replace("b: {commitment: 30m, tolerance: 30m}",
                                                                               "b: {commitment: 1m, tolerance: 2m}")))
    events = str(write_events(tmp_path / "events.jsonl", generate(4)))
    args = ["backtest", "--policies", current, "--candidate", candidate, "--events", events]
    assert slamon([*args, "--json"]) == 0
    doc = orjson.loads(capsysbinary.readouterr().out)
    assert set(doc) == {"now", "rows", "changed"}
    b = next(r for r in doc["rows"] if r["node"] == "b")
    assert b["changed_runs"] > 0 and set(b) == {"process", "node", "current", "candidate", "warnings", "changed_runs"}
    assert b["warnings"]["candidate"]["tolerance_breached"] > b["warnings"]["current"]["tolerance_breached"]
    assert slamon(args) == 0
    text = capsysbinary.readouterr().out.decode()
    assert "warn/day" in text and f"{sum(r['changed_runs'] for r in doc['rows'])} run(s) change state" in text


def test_a_rejected_candidate_is_named(tmp_path, capsys):
    current = str(write_policies(tmp_path / "current"))
    bad = str(write_policies(tmp_path / "bad", "process: p\nnodes:\n  a: {commitment: 2h, tolerance: 1h}\n"))
    events = str(write_events(tmp_path / "events.jsonl", generate(4)))
    assert slamon(["backtest", "--policies", current, "--candidate", bad, "--events", events]) == 2
    err = capsys.readouterr().err
    assert "slamon backtest: candidate policies rejected" in err and "tolerance" in err


# ---------------------------------------------------------------- one pass, split by order over processes

TIGHTER = POLICY_YAML.replace("a: {commitment: 60m, tolerance: 2h, owner: ops}",
                              "a: {commitment: 25m, tolerance: 50m, owner: ops}")


def _sets(tmp_path, candidate_yaml=TIGHTER):
    from monitor.core.policies import load_policy_dir

    current, _ = load_policy_dir(write_policies(tmp_path / "current"))
    candidate, _ = load_policy_dir(write_policies(tmp_path / "candidate", candidate_yaml))
    return current, candidate


def _both_ways(tmp_path, path, now=None, shards=(1, 2, 3), candidate_yaml=TIGHTER):
    """The backtest of two replays, and whether each one-pass backtest gave it in one pass (not falling back)."""
    from monitor.commands.backtest import _sharded, file_by_shard, run_backtest
    from monitor.eventlog import read_events
    from monitor.reports.analyses import backtest

    current, candidate = _sets(tmp_path, candidate_yaml)
    doc, cur, cand = backtest(current, candidate, lambda: read_events(str(path)), now)
    one_pass = []
    for n in shards:
        done = run_backtest(current, candidate, lambda: read_events(str(path)), file_by_shard(str(path)), now,
                            shards=n)
        assert done.doc == doc
        assert done.invalid == (cur.result["invalid"], cand.result["invalid"])
        assert (done.first_at, done.now) == (cur.first_at, cur.now)
        one_pass.append(_sharded(current, candidate, file_by_shard(str(path)), now, n) is not None)
    return doc, cur.result["invalid"], one_pass


def _lines(events):
    return [orjson.dumps(e) for e in events]


@pytest.mark.parametrize("seed", [6, 7])
def test_one_pass_equals_two_replays_with_bad_lines_and_a_node_known_to_one_side(tmp_path, seed):
    events = generate(seed, orders=150)
    lines = _lines(events)
    extra = [b"not json", b"", b"   ", b"[1, 2]", b'{"event_id": "x"}', b'{"order_id": 7}',
             orjson.dumps({"event_id": "u1", "order_id": "o001", "process": "p", "type": "node_started",
                           "node": "c", "at": events[-1]["at"]})]
    for i, line in enumerate(extra):
        lines.insert(1 + i * 37 if i < len(extra) - 1 else len(lines), line)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    extra_node = TIGHTER.replace("segments:", "  c: {commitment: 10m, tolerance: 15m}\nsegments:")
    _, invalid, one_pass = _both_ways(tmp_path, path, candidate_yaml=extra_node)
    assert invalid["malformed"] == 4 and invalid["unknown_node"] >= 1
    assert one_pass == [True, True, True]


def test_one_pass_with_now_before_the_end_gz_and_json_with_spaces_and_escapes(tmp_path):
    import gzip
    import json

    events = generate(8, orders=120)
    for e in events[::5]:  # an escaped order id: the same order as written plainly elsewhere
        e["order_id"] = e["order_id"].replace("o", "\u00f6")
    lines = [json.dumps(e).encode() if i % 2 else orjson.dumps(e) for i, e in enumerate(events)]  # ": " and ":"
    lines = [line.replace(b"\\u00f6", b"\xc3\xb6") if i % 3 else line for i, line in enumerate(lines)]
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    now = events[len(events) // 2]["at"]
    from monitor.core.instants import parse_instant

    _, _, one_pass = _both_ways(tmp_path, path, now=parse_instant(now))
    assert one_pass == [True, True, True]


def test_a_csv_file_is_split_after_decoding(tmp_path):
    events = generate(9, orders=80)
    columns = ["event_id", "order_id", "process", "type", "node", "at", "segment"]
    rows = [",".join(columns)] + [",".join(str(e.get(c, "")) for c in columns) for e in events]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n")
    _, _, one_pass = _both_ways(tmp_path, path)
    assert one_pass == [True, True, True]


def test_what_one_pass_cannot_give_falls_back_to_two_replays(tmp_path):
    events = generate(10, orders=100)
    # an event id applied in two orders (the second is a duplicate, whatever its order) ...
    dup = next(e for e in events if e["order_id"] != events[0]["order_id"] and e["type"] == "node_started")
    events.append({**dup, "order_id": "zz-late", "at": events[-1]["at"]})
    path = tmp_path / "dup.jsonl"
    path.write_bytes(b"\n".join(_lines(events)) + b"\n")
    _, invalid, one_pass = _both_ways(tmp_path, path)
    assert invalid["duplicate_event"] == 1
    same = [zlib.crc32(dup["order_id"].encode()) % n == zlib.crc32(b"zz-late") % n for n in (2, 3)]
    assert one_pass == [True, *same]  # one pass unless the two orders are in two processes
    # ... and events out of time order
    events = generate(11, orders=100)
    events[10], events[40] = events[40], events[10]
    path = tmp_path / "unsorted.jsonl"
    path.write_bytes(b"\n".join(_lines(events)) + b"\n")
    _, _, one_pass = _both_ways(tmp_path, path)
    assert one_pass == [False, False, False]


def test_an_engine_failure_falls_back_to_the_replays_internal_error(tmp_path, monkeypatch):
    from monitor.core.engine import Engine

    events = generate(12, orders=60)
    victim = events[len(events) // 3]["event_id"]
    apply = Engine.apply

    def failing(self, state, ev, sink):
        if ev.event_id == victim:
            raise RuntimeError("boom")
        return apply(self, state, ev, sink)

    monkeypatch.setattr(Engine, "apply", failing)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(_lines(events)) + b"\n")
    _, invalid, one_pass = _both_ways(tmp_path, path)
    assert invalid["internal_error"] == 1 and one_pass == [False, False, False]


def test_order_key_reads_the_top_level_order_id():
    from monitor.eventlog import order_key

    cases = {
        b'{"event_id":"1","order_id":"o1","type":"x"}': b"o1",
        b'{"event_id": "1", "order_id": "o1"}': b"o1",
        b'{"order_id" : "o1"}': b"o1",
        b'{"order_id":"\\u00f6"}': "\u00f6".encode(),
        b'{"order_id":"\xc3\xb6"}': "\u00f6".encode(),
        b'{"order_id":"a\\"b"}': b'a"b',
        b'{"attrs":{"order_id":"inner"},"order_id":"outer"}': b"outer",
        b'{"type":"order_id","order_id":"o2"}': b"o2",
        b'{"order\\u005fid":"o3","attrs":{"order_id":"inner"}}': b"o3",
        b'{"order_id":7}': None,  # not an event: it may go to any process, as long as to one
        b"[1]": None,
        b"not json": None,
    }
    for line, key in cases.items():
        assert order_key(line) == key, line


def test_a_damaged_file_is_rejected_by_the_one_pass_backtest(tmp_path, capsys):
    current = str(write_policies(tmp_path / "current"))
    damaged = tmp_path / "events.jsonl.gz"
    damaged.write_bytes(b"\x1f\x8b\x08\x00garbage")
    assert slamon(["backtest", "--policies", current, "--candidate", current, "--events", str(damaged)]) == 2
    assert "damaged or cut short" in capsys.readouterr().err
