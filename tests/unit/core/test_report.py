"""Period reports (CONTRACTS.md section 8) against the replay and against a count made from the runs of an
independent model (tests/unit/runs_oracle.py) over periods found by scanning the local clock minute by minute."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.core.instants import format_instant, parse_instant
from monitor.core.policies import load_policy_dir
from monitor.eventlog import read_events, replay_file
from monitor.reports.analyses import period_report

from ..runs_oracle import BASE, generate, limits, minute_of, runs_of, write_events, write_policies

STATES = ("completed_normal", "completed_acceptable", "completed_warning", "in_progress_normal",
          "in_progress_acceptable", "in_progress_warning", "cancelled")


def report(tmp_path, events, period="day", timezone="UTC", now=None, by_segment=False, **kw):
    policies, _ = load_policy_dir(write_policies(tmp_path / "policies"))
    path = str(write_events(tmp_path / "events.jsonl", events))
    doc, done = period_report(policies, lambda: read_events(path), period, timezone,
                              None if now is None else parse_instant(now), by_segment=by_segment, **kw)
    return doc, path, policies


def utc(minute: int) -> str:
    return format_instant(parse_instant(BASE.isoformat()) + minute * 60_000_000)


# ---------------------------------------------------------------- the oracle's report


def scanned_periods(kind: str, zone: str, first: int, last: int) -> list[tuple[int, int]]:
    """[start, end) in minutes from BASE of the periods holding minutes first..last: a period starts where the
    local day (ISO week, month) differs from the minute before."""
    tz = ZoneInfo(zone)

    def key(m: int) -> tuple:
        d = (BASE + timedelta(minutes=m)).astimezone(tz).date()
        return (d,) if kind == "day" else tuple(d.isocalendar()[:2]) if kind == "week" else (d.year, d.month)

    m = first
    while key(m - 1) == key(first):
        m -= 1
    bounds = [m]
    while bounds[-1] <= last:
        m = bounds[-1] + 1
        while key(m) == key(m - 1):
            m += 1
        bounds.append(m)
    return list(zip(bounds, bounds[1:], strict=False))


def tally(entries: list[tuple[str, int | None]]) -> dict:
    counts = dict.fromkeys(STATES, 0)
    durations = []
    for state, elapsed in entries:
        counts[state] += 1
        if state.startswith("completed_"):
            durations.append(elapsed * 60.0)
    total = sum(counts.values())
    judged = total - counts["cancelled"]
    rates = {lvl: (counts[f"completed_{lvl}"] + counts[f"in_progress_{lvl}"]) / judged if judged else None
             for lvl in ("normal", "acceptable", "warning")}
    flag = None if rates["normal"] is None else "tighten" if rates["normal"] >= 0.9 else \
        "improve" if rates["normal"] < 0.1 else None
    if durations:
        d = sorted(durations)
        q = statistics.quantiles(d, n=10, method="inclusive") if len(d) > 1 else [d[0]] * 9
        stats = {"count": len(d), "mean": statistics.fmean(d), "min": d[0], "max": d[-1],
                 "p50": statistics.median(d), "p90": q[8]}
    else:
        stats = {"count": 0, "mean": None, "min": None, "max": None, "p50": None, "p90": None}
    return {**counts, "total": total, "rates": rates, "flag": flag, "duration_s": stats}


def oracle_report(events, kind, zone, now=None, by_segment=False):
    last = max(minute_of(e["at"]) for e in events) if now is None else now
    first = min(minute_of(e["at"]) for e in events)
    runs = runs_of(events, last)
    periods = []
    for s, e in scanned_periods(kind, zone, first, last):
        if s > last:
            break
        j = min(e, last)
        rows: dict[tuple, list] = {}
        owners: dict[str | None, list] = {}
        for r in runs:
            if r.end is not None and s <= r.end < e:
                entry = (r.state_at(r.end), r.elapsed(r.end))
            elif r.start < e and (r.end is None or r.end >= e):
                entry = (f"in_progress_{r.level(j)}", None)
            else:
                continue
            rows.setdefault(("p", r.node, r.segment if by_segment else None), []).append(entry)
            owners.setdefault(limits(r.node, r.segment)[2], []).append(entry)
        summary = []
        for (process, node, segment), entries in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
            head = {"process": process, "node": node, **({"segment": segment} if by_segment else {})}
            summary.append({**head, **tally(entries)})
        owner_rows = []
        for owner, entries in sorted(owners.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            row = tally(entries)
            del row["duration_s"]
            owner_rows.append({"owner": owner, **row})
        periods.append({"start": utc(s), "end": utc(e), "judged_at": utc(j), "summary": summary, "owners": owner_rows})
    return periods


def assert_same(actual, expected, where="report"):
    """Equal, floats within rounding (the mean and the quantiles are computed another way here)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), where
        for k in expected:
            assert_same(actual[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for i, (a, b) in enumerate(zip(actual, expected, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=1e-12), where
    else:
        assert actual == expected and type(actual) is type(expected), where


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_period_holding_every_event_equals_the_replay_summary(tmp_path, seed):
    events = generate(seed)  # 2026-03-05 .. 2026-03-11: one month
    doc, path, policies = report(tmp_path, events, period="month", timezone="Europe/Berlin")
    replayed = replay_file(policies, path)
    assert len(doc["periods"]) == 1
    assert doc["periods"][0]["summary"] == replayed["summary"]
    assert doc["now"] == replayed["now"] == doc["periods"][0]["judged_at"]
    mid = utc(3 * 24 * 60 + 7)  # and judged in the middle, later events not applied
    doc, _, _ = report(tmp_path, events, period="month", now=mid)
    assert doc["periods"][0]["summary"] == replay_file(policies, path, parse_instant(mid))["summary"]


@pytest.mark.parametrize("seed,kind,zone,by_segment", [
    (4, "day", "America/New_York", False),  # across the US spring change (2026-03-08)
    (5, "day", "Asia/Kolkata", True),
    (6, "week", "America/New_York", False),
    (7, "day", "UTC", True),
])
def test_every_period_counts_what_the_runs_say(tmp_path, seed, kind, zone, by_segment):
    events = generate(seed, orders=80)
    doc, _, _ = report(tmp_path, events, period=kind, timezone=zone, by_segment=by_segment)
    assert doc["timezone"] == zone and doc["period"] == kind
    assert_same(doc["periods"], oracle_report(events, kind, zone, by_segment=by_segment))


def test_with_now_inside_the_data_later_periods_and_events_are_left_out(tmp_path):
    events = generate(8, orders=80)
    now = 2 * 24 * 60 + 13 * 60 + 17
    doc, _, _ = report(tmp_path, events, period="day", timezone="Europe/Berlin", now=utc(now))
    expected = oracle_report(events, "day", "Europe/Berlin", now=now)
    assert_same(doc["periods"], expected)
    assert doc["periods"][-1]["judged_at"] == utc(now) == doc["now"]


def test_from_and_to_pick_the_periods_and_runs_started_earlier_still_count(tmp_path):
    events = generate(9, orders=80)
    full, _, _ = report(tmp_path, events, period="day")
    part, _, _ = report(tmp_path, events, period="day", from_date=date(2026, 3, 7), to_date=date(2026, 3, 8))
    assert [p["start"] for p in part["periods"]] == ["2026-03-07T00:00:00Z", "2026-03-08T00:00:00Z"]
    assert part["periods"] == [p for p in full["periods"] if p["start"] in ("2026-03-07T00:00:00Z",
                                                                             "2026-03-08T00:00:00Z")]
    early, _, _ = report(tmp_path, events, period="day", from_date=date(2026, 3, 1), to_date=date(2026, 3, 5))
    assert [p["start"][:10] for p in early["periods"]] == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04",
                                                           "2026-03-05"]
    assert all(p["summary"] == [] for p in early["periods"][:4])
    after, _, _ = report(tmp_path, events, period="day", from_date=date(2027, 1, 1))
    assert after["periods"] == []


def ev(i, etype, when, node="a", order="x", **extra):
    e = {"event_id": f"e{i}", "order_id": order, "process": "p", "type": etype, "at": when, **extra}
    if etype.startswith("node_"):
        e["node"] = node
    return e


def row(period, node):
    return next(r for r in period["summary"] if r["node"] == node)


def test_a_run_open_across_a_period_boundary_is_in_progress_in_the_first_and_completed_in_the_next(tmp_path):
    events = [ev(1, "node_started", "2026-03-10T22:00:00Z"),  # a: C 60m, T 2h
              ev(2, "node_completed", "2026-03-11T01:00:00Z"),
              ev(3, "node_started", "2026-03-11T00:00:00Z", node="b", order="y"),  # starts on the boundary
              ev(4, "node_completed", "2026-03-11T00:10:00Z", node="b", order="y"),
              ev(5, "node_started", "2026-03-10T23:20:00Z", node="b", order="z"),  # ends on the boundary
              ev(6, "node_completed", "2026-03-11T00:00:00Z", node="b", order="z")]
    doc, _, _ = report(tmp_path, events, period="day")
    first, second = doc["periods"]
    assert (first["start"], first["end"], first["judged_at"]) == \
        ("2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z", "2026-03-11T00:00:00Z")
    assert row(first, "a")["in_progress_acceptable"] == 1 and row(first, "a")["total"] == 1  # 2h at midnight
    assert row(first, "b")["in_progress_warning"] == 1 and row(first, "b")["total"] == 1  # z: 40m > T 30m
    assert row(second, "a")["completed_warning"] == 1 and row(second, "a")["total"] == 1
    assert row(second, "a")["duration_s"]["max"] == 3 * 3600.0
    assert (row(second, "b")["completed_normal"], row(second, "b")["completed_warning"]) == (1, 1)  # y, z
    assert row(second, "b")["total"] == 2  # y started on the boundary: in the second period only
    assert second["judged_at"] == doc["now"] == "2026-03-11T01:00:00Z"
    assert row(second, "__order__")["in_progress_normal"] == 3  # the orders are still open


def test_weeks_start_on_monday_midnight_local_across_the_clock_change(tmp_path):
    # Berlin moves from CET to CEST on Sunday 2026-03-29: that week has 167 hours
    events = [ev(1, "node_started", "2026-03-29T23:30:00+02:00"),  # Sunday 23:30 local
              ev(2, "node_completed", "2026-03-30T00:30:00+02:00"),  # Monday 00:30 local
              ev(3, "node_started", "2026-03-30T00:00:00+02:00", node="b", order="y"),  # Monday 00:00 sharp
              ev(4, "node_completed", "2026-03-30T00:20:00+02:00", node="b", order="y")]
    doc, _, _ = report(tmp_path, events, period="week", timezone="Europe/Berlin")
    first, second = doc["periods"]
    assert (first["start"], first["end"]) == ("2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z")
    assert (second["start"], second["end"]) == ("2026-03-29T22:00:00Z", "2026-04-05T22:00:00Z")
    assert row(first, "a")["in_progress_normal"] == 1 and "b" not in [r["node"] for r in first["summary"]]
    assert row(second, "a")["completed_normal"] == 1 and row(second, "b")["completed_normal"] == 1
    assert row(second, "a")["duration_s"]["count"] == 1 and row(second, "a")["duration_s"]["max"] == 3600.0


@pytest.mark.parametrize("seed", [10, 11])
def test_owners_add_up_to_the_rows_of_the_nodes_they_own(tmp_path, seed):
    events = generate(seed, orders=80)
    doc, _, _ = report(tmp_path, events, period="day", by_segment=True)
    plain, _, _ = report(tmp_path, events, period="day")
    assert any(o["owner"] is None for p in doc["periods"] for o in p["owners"])
    for period, plain_period in zip(doc["periods"], plain["periods"], strict=True):
        by_owner: dict = {}
        for r in period["summary"]:  # the owner of a (node, segment) read from the policy by the oracle
            acc = by_owner.setdefault(limits(r["node"], r["segment"])[2], dict.fromkeys(STATES, 0))
            for s in STATES:
                acc[s] += r[s]
        assert {o["owner"]: {s: o[s] for s in STATES} for o in period["owners"]} == by_owner
        assert sum(o["total"] for o in period["owners"]) == sum(r["total"] for r in period["summary"])
        assert plain_period["owners"] == period["owners"]
        for r in plain_period["summary"]:  # segments add up to the plain rows
            parts = [x for x in period["summary"] if x["node"] == r["node"]]
            assert {s: sum(x[s] for x in parts) for s in STATES} == {s: r[s] for s in STATES}


def test_no_events_no_periods(tmp_path):
    doc, _, _ = report(tmp_path, [])
    assert doc == {"timezone": "UTC", "period": "day", "now": None, "periods": []}
