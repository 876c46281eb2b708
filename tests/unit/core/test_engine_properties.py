"""Properties of working time and of the engine, over generated calendars, events and tick patterns."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.core.calendars import ALWAYS_OPEN, WeeklyCalendar
from monitor.core.engine import Engine, dump_state
from monitor.core.events import Event
from monitor.core.instants import parse_instant
from monitor.core.runs import reschedule

from ..helpers import Recorder, policies

US = 1_000_000
BASE = parse_instant("2026-03-20T00:00:00Z")  # spans the European and US spring DST changes
SPAN = 40 * 86400 * US
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Shanghai", "Australia/Lord_Howe"]


@st.composite
def calendars(draw):
    hours = {}
    for day in range(7):
        cuts = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
        ranges = [(cuts[i] * 15, cuts[i + 1] * 15) for i in range(0, len(cuts) - 1, 2) if cuts[i] < cuts[i + 1]]
        if ranges:
            hours[day] = ranges
    if not hours:
        hours = {0: [(540, 1020)]}
    holidays = {date(2026, 3, 20) + timedelta(days=d) for d in draw(st.sets(st.integers(0, 40), max_size=5))}
    return WeeklyCalendar("gen", draw(st.sampled_from(ZONES)), hours, holidays)


QUARTER = 15 * 60 * US
# Random instants, and instants on the quarter hours where calendar ranges begin and end (so that limits used
# up exactly at the end of a working period are common, not a measure-zero accident).
instants = st.one_of(st.integers(BASE, BASE + SPAN), st.integers(0, SPAN // QUARTER).map(lambda q: BASE + q * QUARTER))
amounts = st.one_of(st.integers(0, 5 * 86400 * US), st.integers(0, 5 * 96).map(lambda q: q * QUARTER))


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, instants, instants)
def test_working_time_is_additive_over_adjacent_intervals(cal, a, b, c):
    a, b, c = sorted((a, b, c))
    assert cal.working(a, b) + cal.working(b, c) == cal.working(a, c)
    assert 0 <= cal.working(a, c) <= c - a


@settings(max_examples=200, deadline=None)
@given(calendars(), instants, amounts)
def test_used_up_is_the_latest_instant_with_that_working_time(cal, start, amount):
    t = cal.used_up(start, amount)
    assert t >= start
    assert cal.working(start, t) == amount
    assert cal.working(start, t + 1) == amount + 1  # working time resumes right at t: no later instant fits


@settings(max_examples=100, deadline=None)
@given(instants, amounts)
def test_always_open_inverse(start, amount):
    assert ALWAYS_OPEN.working(start, ALWAYS_OPEN.used_up(start, amount)) == amount


# ---------------------------------------------------------------- engine under arbitrary tick patterns

POLICY = {"process": "p", "early_warning": 0.5, "calendar": "cal",
          "order": {"commitment": "3h", "tolerance": "5h"},
          "nodes": {"a": {"commitment": "20m", "tolerance": "50m"}, "b": {"commitment": "1h", "tolerance": "1h"}}}
CAL = {"calendars": {"cal": {"timezone": "Europe/Berlin", "hours": {d: ["08:00-12:00", "13:00-20:00"] for d in
                                                                      ("mon", "tue", "wed", "thu", "fri", "sat")}}}}


@st.composite
def order_events(draw):
    """A plausible life of several orders: starts, pauses, resumes, ends, with gaps in minutes."""
    events = []
    n = 0
    for o in range(draw(st.integers(1, 3))):
        t = BASE + draw(st.integers(0, 3 * 86400)) * US
        open_runs: dict[str, bool] = {}  # node -> paused?
        for _ in range(draw(st.integers(1, 12))):
            t += draw(st.integers(0, 120)) * 60 * US
            node = draw(st.sampled_from("ab"))
            if node not in open_runs:
                etype = "node_started"
                open_runs[node] = False
            else:
                etype = draw(st.sampled_from(["node_completed", "node_cancelled", "pause_or_resume"]))
                if etype == "pause_or_resume":
                    etype = "node_resumed" if open_runs[node] else "node_paused"
                    open_runs[node] = not open_runs[node]
                else:
                    del open_runs[node]
            n += 1
            events.append(Event(f"e{n}", f"o{o}", "p", etype, node, t))
        n = order_end(draw, events, n, o, t)
    return sorted(events, key=lambda e: e.at)


def order_end(draw, events, n, o, t):
    """Maybe an order_completed or order_cancelled after `t`; returns the events' count."""
    if draw(st.booleans()):
        n += 1
        events.append(Event(f"e{n}", f"o{o}", "p", draw(st.sampled_from(["order_completed", "order_cancelled"])),
                            None, t + draw(st.integers(0, 300)) * 60 * US))
    return n


def drive(events, ticks, end, doc=POLICY, calendars=CAL):
    """Apply the events with ticks in between (at most at each event's time), then advance to `end`: the warnings
    and outcomes, the rejection reasons (None: applied) and the states."""
    engine, rec = Engine(policies(doc, calendars=calendars)), Recorder()
    states, rejected = {}, []
    ticks = sorted(ticks)
    for e in events:
        while ticks and ticks[0] <= e.at:  # ticks before the event, at most at its time
            now = ticks.pop(0)
            for s in states.values():
                engine.advance(s, now, rec)
        s, rej = engine.apply(states.get(e.order_id), e, rec)
        rejected.append(rej.reason if rej else None)
        if s is not None:
            states[e.order_id] = s
    for now in [*ticks, end]:
        for s in states.values():
            engine.advance(s, now, rec)
    return rec, rejected, states


@settings(max_examples=150, deadline=None)
@given(order_events(), st.lists(instants, max_size=25))
def test_any_tick_pattern_gives_the_warnings_of_one_final_advance(events, ticks):
    end = BASE + SPAN + 86400 * US
    reference, rejected, _ = drive(events, [], end)
    assert set(rejected) == {None}
    ticked, _, _ = drive(events, ticks, end)
    assert sorted(map(str, ticked.warnings)) == sorted(map(str, reference.warnings))
    assert ticked.outcomes == reference.outcomes
    ids = [w["warning_id"] for w in ticked.warnings]
    assert len(ids) == len(set(ids))


@settings(max_examples=100, deadline=None)
@given(order_events(), instants, instants)
def test_advance_is_idempotent_and_monotone(events, t1, t2):
    t1, t2 = sorted((t1, t2))
    engine, rec = Engine(policies(POLICY, calendars=CAL)), Recorder()
    states = {}
    for e in events:
        states[e.order_id], _ = engine.apply(states.get(e.order_id), e, rec)
    base = len(rec.warnings)
    for s in states.values():
        engine.advance(s, t1, rec)
    first = len(rec.warnings)
    for s in states.values():
        engine.advance(s, t1, rec)
    assert len(rec.warnings) == first  # idempotent
    for s in states.values():
        engine.advance(s, t2, rec)
    assert len(rec.warnings) >= first  # monotone: later clocks only add
    assert all(parse_instant(w["crossed_at"]) < t2 for w in rec.warnings[base:])


# ---------------------------------------------------------------- the same with every feature of section 12

RICH = {"process": "p", "early_warning": [0.25, 0.5, 0.875], "calendar": "cal",
        "order": {"commitment": "3h", "tolerance": "5h"},
        "nodes": {"a": {"commitment": "20m", "tolerance": "50m", "calendar": "late"},
                  "b": {"commitment": "1h", "tolerance": "1h"}, "c": {"commitment": "40m", "tolerance": "1h"}},
        "segments": {"hot": {"match": {"attrs.k": ["1", "2"]}, "calendar": "late",
                             "b": {"commitment": "30m", "calendar": "cal"}},
                     "gold": {"a": {"commitment": "10m"}}},
        "statuses": {"Open": "a", "Work": "c", "Wait": {"pause": "c"}, "Done": {"end": "completed"},
                     "Drop": {"end": "cancelled"}}}
RICH_CAL = {"calendars": {**CAL["calendars"], "late": {"timezone": "Asia/Shanghai", "hours": {
    d: ["10:00-23:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sun")}}}}


@st.composite
def rich_order(draw, o: int):
    """One order mixing node events, status changes (some invalid on purpose) and maybe an order end."""
    t = BASE + draw(st.integers(0, 3 * 86400)) * US
    attrs = draw(st.sampled_from([None, {"k": 1}, {"k": "2"}, {"k": None}]))
    segment = draw(st.sampled_from(["default", "gold", "hot"]))
    steps = draw(st.lists(st.tuples(st.integers(0, 120), st.sampled_from(
        ["Open", "Work", "Wait", "Work", "Done", "Drop", "Nope", "node_started", "node_completed", "node_paused",
         "node_resumed", "node_cancelled"]), st.sampled_from("abc")), min_size=1, max_size=14))
    events = []
    for i, (minutes, what, node) in enumerate(steps):
        t += minutes * 60 * US
        if what.startswith("node_"):
            events.append(Event(f"e{o}-{i}", f"o{o}", "p", what, node, t, segment, attrs))
        else:
            events.append(Event(f"e{o}-{i}", f"o{o}", "p", "status_changed", None, t, segment, attrs, what))
    order_end(draw, events, len(steps), o, t)
    return events


@st.composite
def rich_events(draw):
    orders = [draw(rich_order(o)) for o in range(draw(st.integers(1, 3)))]
    return sorted((e for events in orders for e in events), key=lambda e: e.at)


@settings(max_examples=150, deadline=None)
@given(rich_events(), st.lists(instants, max_size=25))
def test_with_thresholds_segments_calendars_and_statuses_any_tick_pattern_gives_the_same(events, ticks):
    end = BASE + SPAN + 86400 * US
    reference, rejected, states = drive(events, [], end, RICH, RICH_CAL)
    ticked, rejected2, _ = drive(events, ticks, end, RICH, RICH_CAL)
    assert rejected == rejected2
    assert sorted(map(str, ticked.warnings)) == sorted(map(str, reference.warnings))
    assert ticked.outcomes == reference.outcomes
    ids = [w["warning_id"] for w in ticked.warnings]
    assert len(ids) == len(set(ids))
    for w in ticked.warnings:  # every early warning falls at its fraction of the commitment, at most a microsecond off
        if w["kind"] == "approaching":
            assert abs(w["elapsed_s"] - w["threshold"] * w["commitment_s"]) <= 1e-6
            assert w["warning_id"].endswith({0.25: "@25", 0.5: "@50", 0.875: "@87.5"}[w["threshold"]])
    for s in states.values():  # at most one current status run, and it is open
        assert s.status_node is None or s.status_node in s.runs
        if s.is_closed:
            assert s.runs == {}  # order_completed and order_cancelled both stop every clock


@settings(max_examples=100, deadline=None)
@given(rich_events(), st.lists(instants, max_size=25))
def test_scheduling_again_under_the_same_calendars_changes_no_state(events, ticks):
    # the worker schedules every open run with a calendar again after each recovery (a calendar may have been
    # redefined meanwhile): under unchanged calendars that must change nothing, or every rebuild would rewrite
    _, _, states = drive(events, ticks, BASE, RICH, RICH_CAL)  # (BASE: no advance after the events and ticks)
    for s in states.values():
        before = dump_state(s)
        assert not reschedule(s)
        assert dump_state(s) == before
