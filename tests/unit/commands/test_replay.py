"""`slamon replay` on a generated sample (two processes, a Berlin office calendar across the DST change, segments,
pauses, rework, cancellations, noise), checked against a brute-force oracle that steps minute by minute in local
time: a deliberately different computation from the engine's interval arithmetic."""

from __future__ import annotations

import csv
import gzip
import json
import random
import statistics
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from monitor.cli import main as slamon

BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {d: [(9 * 60, 12 * 60), (13 * 60, 18 * 60)] for d in range(5)}  # mon-fri, local minutes
HOLIDAYS = {date(2026, 3, 30)}
START = datetime(2026, 3, 24, 6, 0, tzinfo=UTC)  # a week before and after the spring DST change
NOW = datetime(2026, 4, 3, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

REPAIR = """process: repair
version: 4
calendar: office
early_warning: 0.8
order: {commitment: 3d, tolerance: 4d, owner: desk}
nodes:
  diagnose: {commitment: 2h, tolerance: 4h, owner: triage}
  fix: {commitment: 1d, tolerance: 2d, owner: field}
segments:
  gold:
    fix: {commitment: 5h}
"""
ONBOARD = """process: onboarding
nodes:
  call: {commitment: 30m, tolerance: 1h, owner: calls}
  verify: {commitment: PT2H, tolerance: 2h}
"""
CALENDARS = """calendars:
  office:
    timezone: Europe/Berlin
    hours:
      mon: ["09:00-12:00", "13:00-18:00"]
      tue: ["09:00-12:00", "13:00-18:00"]
      wed: ["09:00-12:00", "13:00-18:00"]
      thu: ["09:00-12:00", "13:00-18:00"]
      fri: ["09:00-12:00", "13:00-18:00"]
    holidays: ["2026-03-30"]
"""
LIMITS = {  # minutes: (commitment, tolerance, approaching)
    ("repair", "diagnose", "default"): (120, 240, 96), ("repair", "fix", "default"): (1440, 2880, 1152),
    ("repair", "fix", "gold"): (300, 2880, 240), ("repair", "__order__", "default"): (4320, 5760, 3456),
    ("onboarding", "call", "default"): (30, 60, None), ("onboarding", "verify", "default"): (120, 120, None),
}
CALENDARED = {"repair"}


def iso(dt: datetime) -> str:
    return dt.astimezone(BERLIN if dt.minute % 2 else UTC).isoformat()  # mixed offsets on purpose


def generate(seed: int = 11):
    rng = random.Random(seed)
    clean: list[dict] = []
    n = 0

    def add(order, process, etype, t, node=None, **extra):
        nonlocal n
        n += 1
        e = {"event_id": f"ev{n}", "order_id": order, "process": process, "type": etype, "at": iso(t), **extra}
        if node:
            e["node"] = node
        clean.append(e)
        return e

    for i in range(70):
        process = "repair" if i % 2 else "onboarding"
        nodes = ["diagnose", "fix", "fix"] if process == "repair" else ["call", "verify"]
        order = f"{process[:3]}-{i}"
        t = START + rng.randrange(0, 8 * 24 * 60) * MIN
        segment = rng.choice(["gold", "default", "silver"]) if process == "repair" else None
        first = True
        for node in nodes:
            extra = {"segment": segment} if segment and segment != "default" else {}
            if first:
                extra["attrs"] = {"i": i}
            first = False
            add(order, process, "node_started", t, node, **extra)
            for _ in range(rng.randrange(0, 3)):
                t += rng.randrange(1, 600) * MIN
                add(order, process, "node_paused", t, node)
                t += rng.randrange(0, 900) * MIN
                add(order, process, "node_resumed", t, node)
            t += rng.choice([rng.randrange(0, 200), rng.randrange(0, 4000)]) * MIN
            add(order, process, rng.choice(["node_completed"] * 5 + ["node_cancelled"]), t, node)
            t += rng.randrange(0, 120) * MIN
        fate = rng.random()
        if fate < 0.5:
            add(order, process, "order_completed", t)
        elif fate < 0.65:
            add(order, process, "order_cancelled", t)
    # Hand-placed edges: limits used up exactly at 12:00 and at 18:00 on the Friday before the holiday Monday
    # (across the DST change); and a completion exactly at the commitment.
    add("rep-edge-1", "repair", "node_started", datetime(2026, 3, 24, 10, 0, tzinfo=BERLIN), "diagnose")
    add("rep-edge-2", "repair", "node_started", datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN), "diagnose")
    add("rep-edge-3", "repair", "node_started", datetime(2026, 3, 25, 9, 0, tzinfo=BERLIN), "diagnose")
    add("rep-edge-3", "repair", "node_completed", datetime(2026, 3, 25, 11, 0, tzinfo=BERLIN), "diagnose")
    noise: list[bytes] = [b"not json at all", b"{}", b"[1, 2]",
                          orjson.dumps({"event_id": "m1", "order_id": "x", "process": "repair", "type": "node_started",
                                        "node": "fix", "at": "2026-03-25T10:00:00"})]
    valid_noise = []
    applied = [e for e in clean if datetime.fromisoformat(e["at"]) <= NOW]
    for _ in range(6):
        dup = dict(rng.choice(applied))
        valid_noise.append(dup)  # duplicate_event
    valid_noise.append({"event_id": "u1", "order_id": "u-1", "process": "nosuch", "type": "node_started",
                        "node": "fix", "at": iso(START + 5 * MIN)})  # unknown_process
    valid_noise.append({"event_id": "u2", "order_id": "rep-1", "process": "repair", "type": "node_started",
                        "node": "ghost", "at": iso(START + 6 * MIN)})  # unknown_node
    valid_noise.append({"event_id": "t1", "order_id": "bad-1", "process": "onboarding", "type": "node_resumed",
                        "node": "call", "at": iso(START + 7 * MIN)})  # invalid_transition
    expected_invalid = {"malformed": 4, "duplicate_event": 6, "unknown_process": 1, "unknown_node": 1,
                        "out_of_order": 0, "invalid_transition": 1, "internal_error": 0}
    return clean, valid_noise, noise, expected_invalid


# ---------------------------------------------------------------- the oracle


def working_minute(process: str, m: datetime) -> bool:
    if process not in CALENDARED:
        return True
    local = m.astimezone(BERLIN)
    if local.date() in HOLIDAYS:
        return False
    mod = local.hour * 60 + local.minute
    return any(a <= mod < b for a, b in OFFICE.get(local.weekday(), ()))


def judge_run(process, node, segment, start, pauses, end, end_kind, now):
    c, t, a = LIMITS[(process, node, segment if (process, node, segment) in LIMITS else "default")]
    limits = [(x, k) for x, k in ((a, "approaching"), (c, "commitment_breached"), (t, "tolerance_breached")) if x]
    stop = end if end is not None else now
    e, crossings, m = 0, [], start
    while m < stop:
        if working_minute(process, m) and not any(ps <= m < pe for ps, pe in pauses):
            while limits and e == limits[0][0]:
                crossings.append((limits.pop(0)[1], m, e))
            e += 1
        m += MIN
    level = "normal" if e <= c else "acceptable" if e <= t else "warning"
    if end is None:
        state = f"in_progress_{level}"
    else:
        state = "cancelled" if end_kind == "cancel" else f"completed_{level}"
    return crossings, e, state, c, t


def oracle(clean: list[dict], now: datetime):
    by_order: dict[str, list[dict]] = {}
    for e in clean:
        if datetime.fromisoformat(e["at"]) <= now:
            by_order.setdefault(e["order_id"], []).append(e)
    warnings, rows = set(), {}
    for order, evs in by_order.items():
        evs.sort(key=lambda e: datetime.fromisoformat(e["at"]))
        process = evs[0]["process"]
        runs, open_runs, counts = [], {}, {}
        for e in evs:
            at, node = datetime.fromisoformat(e["at"]), e.get("node")
            if e["type"] == "node_started":
                if not counts and process == "repair":
                    open_runs["__order__"] = {"node": "__order__", "n": 1, "seg": e.get("segment", "default"),
                                              "start": at, "pauses": [], "end": None, "kind": None}
                counts[node] = counts.get(node, 0) + 1
                open_runs[node] = {"node": node, "n": counts[node], "seg": e.get("segment", "default"), "start": at,
                                   "pauses": [], "end": None, "kind": None}
            elif e["type"] == "node_paused":
                open_runs[node]["paused"] = at
            elif e["type"] == "node_resumed":
                open_runs[node]["pauses"].append((open_runs[node].pop("paused"), at))
            elif e["type"] in ("node_completed", "node_cancelled"):
                r = open_runs.pop(node)
                r["end"], r["kind"] = at, "cancel" if e["type"] == "node_cancelled" else "done"
                runs.append(r)
            else:
                for key in ([k for k in open_runs] if e["type"] == "order_cancelled" else ["__order__"]):
                    if key in open_runs:
                        r = open_runs.pop(key)
                        r["end"], r["kind"] = at, "cancel" if e["type"] == "order_cancelled" else "done"
                        runs.append(r)
        runs += open_runs.values()
        for r in runs:
            pauses = list(r["pauses"]) + ([(r["paused"], now + timedelta(days=365))] if "paused" in r else [])
            crossings, e, state, c, t = judge_run(process, r["node"], r["seg"], r["start"], pauses, r["end"],
                                                  r["kind"], now)
            wid = f"{order}:{r['node']}:{r['n']}:"
            after = {"approaching": "in_progress_normal", "commitment_breached":
                     "in_progress_warning" if c == t else "in_progress_acceptable",
                     "tolerance_breached": "in_progress_warning"}
            for kind, m, elapsed in crossings:
                warnings.add((wid + kind, m, after[kind], elapsed * 60.0))
            if r["end"] is not None and any(k == "commitment_breached" for k, _, _ in crossings):
                warnings.add((wid + "resolved", r["end"], state, e * 60.0))
            row = rows.setdefault((process, r["node"]), {"states": [], "durations": []})
            row["states"].append(state)
            if state.startswith("completed"):
                row["durations"].append(e * 60.0)
    return warnings, rows


def expected_row(states: list[str], durations: list[float]) -> dict:
    names = ["completed_normal", "completed_acceptable", "completed_warning", "in_progress_normal",
             "in_progress_acceptable", "in_progress_warning", "cancelled"]
    counts = {s: states.count(s) for s in names}
    judged = len(states) - counts["cancelled"]
    rates = {lvl: (counts[f"completed_{lvl}"] + counts[f"in_progress_{lvl}"]) / judged if judged else None
             for lvl in ("normal", "acceptable", "warning")}
    flag = None
    if rates["normal"] is not None:
        flag = "tighten" if rates["normal"] >= 0.9 else "improve" if rates["normal"] < 0.1 else None
    if durations:
        q = statistics.quantiles(durations, n=10, method="inclusive") if len(durations) > 1 else [durations[0]] * 9
        d = {"count": len(durations), "mean": statistics.fmean(durations), "min": min(durations),
             "max": max(durations), "p50": q[4], "p90": q[8]}
    else:
        d = {"count": 0, "mean": None, "min": None, "max": None, "p50": None, "p90": None}
    return {**counts, "total": len(states), "rates": rates, "flag": flag, "duration_s": d}


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    pol = d / "policies"
    pol.mkdir()
    (pol / "repair.yaml").write_text(REPAIR)
    (pol / "onboarding.yml").write_text(ONBOARD)
    (pol / "calendars.yaml").write_text(CALENDARS)
    clean, valid_noise, noise, invalid = generate()
    lines = [orjson.dumps(e) for e in clean + valid_noise] + noise
    random.Random(3).shuffle(lines)  # the file is not in time order: the replay must sort
    events = d / "events.jsonl"
    events.write_bytes(b"\n".join(lines[:40]) + b"\n\n   \n" + b"\n".join(lines[40:]) + b"\n")
    return pol, events, clean, invalid


def run_json(capsys, *args) -> dict:
    assert slamon(["replay", *args, "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_replay_equals_brute_force_oracle(sample, capsys):
    pol, events, clean, invalid = sample
    out = run_json(capsys, "--policies", str(pol), "--events", str(events), "--now", NOW.isoformat())
    assert out["now"] == "2026-04-03T12:00:00Z"
    assert out["invalid"] == invalid
    exp_warnings, exp_rows = oracle(clean, NOW)
    edges = {w[0]: w[1] for w in exp_warnings if w[0].startswith("rep-edge")}
    assert edges["rep-edge-1:diagnose:1:commitment_breached"] == datetime(2026, 3, 24, 13, 0, tzinfo=BERLIN)
    assert edges["rep-edge-2:diagnose:1:commitment_breached"] == datetime(2026, 3, 31, 9, 0, tzinfo=BERLIN)
    assert not any(w.startswith("rep-edge-3:diagnose:1:commitment") for w in edges)
    got = {(w["warning_id"], datetime.fromisoformat(w["crossed_at"]), w["state"], w["elapsed_s"])
           for w in out["warnings"]}
    assert len(got) == len(out["warnings"])  # no warning twice
    assert got == exp_warnings
    kinds = {w["kind"] for w in out["warnings"]}
    assert kinds == {"approaching", "commitment_breached", "tolerance_breached", "resolved"}
    rows = {(r["process"], r["node"]): r for r in out["summary"]}
    assert set(rows) == set(exp_rows)
    for key, exp in exp_rows.items():
        want = expected_row(exp["states"], exp["durations"])
        got_row = {k: v for k, v in rows[key].items() if k not in ("process", "node")}
        got_d, want_d = got_row.pop("duration_s"), want.pop("duration_s")
        assert got_row == want, key
        assert got_d == pytest.approx(want_d, rel=1e-9), key
    states = {s for r in out["summary"] for s in r if r[s] and s.startswith(("completed", "in_progress", "cancel"))}
    assert len(states) >= 6  # the sample exercises (nearly) all seven states
    for w in out["warnings"]:
        assert w["crossed_at"].endswith("Z") and "detected_at" not in w


def test_default_now_is_the_latest_event_and_warnings_are_in_time_order(sample, capsys):
    pol, events, clean, _ = sample
    out = run_json(capsys, "--policies", str(pol), "--events", str(events))
    latest = max(datetime.fromisoformat(e["at"]) for e in clean)
    assert datetime.fromisoformat(out["now"]) == latest
    times = [datetime.fromisoformat(w["crossed_at"]) for w in out["warnings"]]
    assert times == sorted(times)
    exp_warnings, _ = oracle(clean, latest)
    assert {(w["warning_id"], datetime.fromisoformat(w["crossed_at"])) for w in out["warnings"]} == {
        (w[0], w[1]) for w in exp_warnings}


def test_csv_input_gives_the_same_result_without_attrs(sample, capsys, tmp_path):
    pol, events, clean, _ = sample
    fields = ["event_id", "order_id", "process", "type", "node", "at", "segment"]
    path = tmp_path / "events.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(clean)
    out_csv = run_json(capsys, "--policies", str(pol), "--events", str(path), "--now", NOW.isoformat())
    jl = tmp_path / "clean.jsonl"
    jl.write_bytes(b"\n".join(orjson.dumps({k: v for k, v in e.items() if k != "attrs"}) for e in clean))
    out_jl = run_json(capsys, "--policies", str(pol), "--events", str(jl), "--now", NOW.isoformat())
    assert out_csv == out_jl
    assert out_csv["invalid"]["malformed"] == 0 and len(out_csv["warnings"]) > 10


def test_human_output_has_tables_and_bottlenecks(sample, capsys):
    pol, events, _, _ = sample
    assert slamon(["replay", "--policies", str(pol), "--events", str(events)]) == 0
    text = capsys.readouterr().out
    assert "Seven-state table" in text and "Bottlenecks" in text and "repair" in text and "__order__" in text


def _onboarding_policies(tmp_path):
    pol = tmp_path / "p"
    pol.mkdir()
    (pol / "o.yaml").write_text(ONBOARD)
    return pol


def _jsonl(path, events, prefix=b""):
    path.write_bytes(prefix + b"\n".join(orjson.dumps(e) for e in events))
    return path


def test_all_cancelled_node_has_null_rates(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    ev = _jsonl(tmp_path / "e.jsonl", [
        {"event_id": "1", "order_id": "a", "process": "onboarding", "type": "node_started", "node": "call", "at": "2026-01-01T00:00:00Z"},
        {"event_id": "2", "order_id": "a", "process": "onboarding", "type": "node_cancelled", "node": "call", "at": "2026-01-01T02:00:00Z"}])
    out = run_json(capsys, "--policies", str(pol), "--events", str(ev))
    assert out["summary"] == [{"process": "onboarding", "node": "call", "completed_normal": 0, "completed_acceptable": 0,
                               "completed_warning": 0, "in_progress_normal": 0, "in_progress_acceptable": 0,
                               "in_progress_warning": 0, "cancelled": 1, "total": 1,
                               "rates": {"normal": None, "acceptable": None, "warning": None}, "flag": None,
                               "duration_s": {"count": 0, "mean": None, "min": None, "max": None, "p50": None, "p90": None}}]
    assert [w["kind"] for w in out["warnings"]] == ["commitment_breached", "tolerance_breached", "resolved"]


def test_unusable_arguments_exit_2(sample, tmp_path):
    pol, events, _, _ = sample
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text("process: x\nnodes: {n: {commitment: 2h, tolerance: 1h}}\n")
    cmd = [sys.executable, "-m", "monitor.cli", "replay", "--json"]
    r = subprocess.run([*cmd, "--policies", str(bad), "--events", str(events)], capture_output=True, text=True)
    assert r.returncode == 2 and "x.yaml: nodes.n.tolerance" in r.stderr and r.stdout == ""
    r = subprocess.run([*cmd, "--policies", str(pol), "--events", str(tmp_path / "none.jsonl")], capture_output=True, text=True)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = subprocess.run([*cmd, "--policies", str(pol), "--events", str(events), "--now", "2026-01-01"], capture_output=True, text=True)
    assert r.returncode == 2 and "--now" in r.stderr
    r = subprocess.run([*cmd, "--events", str(events)], capture_output=True, text=True)
    assert r.returncode == 2


def _started(event_id, order_id, at):
    return {"event_id": event_id, "order_id": order_id, "process": "onboarding", "type": "node_started",
            "node": "call", "at": at}


def test_a_repeated_event_id_is_a_duplicate_even_under_another_order(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    ev = _jsonl(tmp_path / "e.jsonl", [
        _started("1", "a", "2026-01-01T00:00:00Z"),
        _started("1", "b", "2026-01-01T00:00:03Z"),  # the same event id: ignored, whatever its order
        {"event_id": "2", "order_id": "c", "process": "nope", "type": "order_completed", "at": "2026-01-01T00:00:04Z"},
        {"event_id": "2", "order_id": "c", "process": "onboarding", "type": "order_completed",
         "at": "2026-01-01T00:00:05Z"},  # id 2 was rejected, not applied: this one is no duplicate
    ])
    out = run_json(capsys, "--policies", str(pol), "--events", str(ev))
    assert out["invalid"]["duplicate_event"] == 1 and out["invalid"]["unknown_process"] == 1
    assert [(r["node"], r["total"]) for r in out["summary"]] == [("call", 1)]


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_a_byte_order_mark_at_the_start_of_the_file_is_not_data(tmp_path, capsys, suffix):
    pol = _onboarding_policies(tmp_path)
    rows = [_started("1", "a", "2026-01-01T00:00:00Z"), _started("2", "b", "2026-01-01T00:00:01Z")]
    ev = tmp_path / f"e.{suffix}"
    if suffix == "csv":
        text = "event_id,order_id,process,type,node,at\n" + "".join(
            ",".join(r[k] for k in ("event_id", "order_id", "process", "type", "node", "at")) + "\n" for r in rows)
        ev.write_bytes(text.encode("utf-8-sig"))
    else:
        _jsonl(ev, rows, prefix=b"\xef\xbb\xbf")
    out = run_json(capsys, "--policies", str(pol), "--events", str(ev))
    assert out["invalid"]["malformed"] == 0
    assert [(r["node"], r["in_progress_normal"]) for r in out["summary"]] == [("call", 2)]


# ---------------------------------------------------------------- damaged input: one line on stderr, exit 2


def _replay_fails(capsys, pol, ev, *extra) -> str:
    """The replay refuses the input with exit 2 and one line on stderr (no traceback, nothing on stdout)."""
    assert slamon(["replay", "--policies", str(pol), "--events", str(ev), "--json", *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_truncated_gzip_file_is_rejected_not_a_traceback_or_a_partial_replay(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    whole = gzip.compress(b"\n".join(orjson.dumps(_started(str(i), f"o{i}", "2026-01-01T00:00:00Z"))
                                     for i in range(2000)))
    (tmp_path / "e.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    err = _replay_fails(capsys, pol, tmp_path / "e.jsonl.gz")
    assert "e.jsonl.gz: the compressed data is damaged or cut short after line" in err
    (tmp_path / "e.jsonl.gz").write_bytes(whole[:12])  # cut inside the gzip header
    assert "cut short at its start" in _replay_fails(capsys, pol, tmp_path / "e.jsonl.gz")


def test_a_csv_that_is_not_utf8_is_rejected_naming_the_line(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    text = "event_id,order_id,process,type,node,at\n1,a,onboarding,node_started,call,2026-01-01T00:00:00Z\n" \
           "2,caf\xe9,onboarding,node_started,call,2026-01-01T00:00:01Z\n"
    (tmp_path / "e.csv").write_bytes(text.encode("latin-1"))
    err = _replay_fails(capsys, pol, tmp_path / "e.csv")
    assert "e.csv: line 3 is not UTF-8 text (byte 0xe9)" in err


def test_a_csv_header_without_the_required_columns_is_rejected_naming_them(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    (tmp_path / "e.csv").write_text("id,when,what\n1,2026-01-01T00:00:00Z,node_started\n")
    err = _replay_fails(capsys, pol, tmp_path / "e.csv")
    assert "e.csv: the CSV header lacks the columns event_id, order_id, process, type, at (it has id, when, what" in err
    (tmp_path / "e.csv").write_text("event_id,order_id,process,type,when\n1,a,onboarding,order_completed,x\n")
    assert "lacks the column at (" in _replay_fails(capsys, pol, tmp_path / "e.csv")


def test_a_now_past_year_9999_is_an_unusable_argument(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    ev = _jsonl(tmp_path / "e.jsonl", [_started("1", "a", "2026-01-01T00:00:00Z")])
    assert "--now: '9999-12-31T23:00:00-05:00' is outside the supported years" in _replay_fails(
        capsys, pol, ev, "--now", "9999-12-31T23:00:00-05:00")


def test_events_that_cannot_be_stored_are_counted_malformed_and_the_replay_goes_on(tmp_path, capsys):
    pol = _onboarding_policies(tmp_path)
    deep: object = 1
    for _ in range(300):
        deep = {"k": deep}
    ev = tmp_path / "e.jsonl"
    ev.write_bytes(b"\n".join([
        orjson.dumps(_started("1", "a", "9999-12-31T23:00:00-05:00")),  # past year 9999 in UTC
        orjson.dumps(_started("2", "b", "1969-12-31T23:00:00Z")),  # before 1970
        json.dumps({**_started("3", "c", "2026-01-01T00:00:00Z"), "attrs": deep}).encode(),
        orjson.dumps(_started("4", "d", "2026-01-01T00:00:00Z"))]))
    out = run_json(capsys, "--policies", str(pol), "--events", str(ev))
    assert out["invalid"]["malformed"] == 3 and out["now"] == "2026-01-01T00:00:00Z"
    assert [(r["node"], r["total"]) for r in out["summary"]] == [("call", 1)]
