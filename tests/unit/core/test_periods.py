"""Report periods in a time zone, checked against a scan of the local clock minute by minute: a period starts at
the first minute whose local day (Monday-based week, month) differs from the minute before."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.core.instants import from_datetime, parse_instant
from monitor.core.periods import PeriodError, Periods

MIN = timedelta(minutes=1)


def local_key(kind: str, dt: datetime) -> tuple:
    d = dt.date()
    if kind == "day":
        return (d,)
    if kind == "week":
        return tuple(d.isocalendar()[:2])  # ISO weeks start on Monday
    return d.year, d.month


def scanned_starts(kind: str, zone: str, first: datetime, last: datetime) -> list[int]:
    """Every instant in [first, last] (minute steps) whose local period differs from the minute before."""
    tz = ZoneInfo(zone)
    out, t = [], first
    before = local_key(kind, (t - MIN).astimezone(tz))
    while t <= last:
        key = local_key(kind, t.astimezone(tz))
        if key != before:
            out.append(from_datetime(t))
        before, t = key, t + MIN
    return out


@pytest.mark.parametrize("kind,zone,first,last", [
    ("week", "Europe/Berlin", datetime(2026, 3, 14, tzinfo=UTC), datetime(2026, 4, 14, tzinfo=UTC)),
    ("week", "Europe/Berlin", datetime(2026, 10, 17, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)),
    ("week", "America/New_York", datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 25, tzinfo=UTC)),
    ("day", "America/Santiago", datetime(2026, 9, 3, tzinfo=UTC), datetime(2026, 9, 9, tzinfo=UTC)),  # 00:00 skipped
    ("day", "America/Santiago", datetime(2026, 4, 2, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC)),  # repeated
    ("day", "Pacific/Apia", datetime(2011, 12, 27, tzinfo=UTC), datetime(2012, 1, 2, tzinfo=UTC)),  # a day skipped
    ("month", "Asia/Shanghai", datetime(2026, 10, 20, tzinfo=UTC), datetime(2027, 1, 3, tzinfo=UTC)),
    ("month", "Australia/Lord_Howe", datetime(2026, 9, 25, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)),
])
def test_periods_start_where_the_local_clock_enters_a_new_period(kind, zone, first, last):
    periods = Periods(kind, zone)
    starts = scanned_starts(kind, zone, first, last)
    assert len(starts) >= 2
    spans = periods.span(starts[0], starts[-1])
    assert [s for s, _ in spans] == starts
    assert all(end == nxt for (_, end), (nxt, _) in zip(spans, spans[1:], strict=False))
    t = starts[0]
    while t < starts[-1]:  # every instant belongs to the period the scan puts it in
        s, e = periods.of(t)
        assert s <= t < e and s == max(x for x in starts if x <= t)
        t += 37 * 60 * 1_000_000


def test_a_week_across_the_spring_change_is_167_hours_and_starts_on_monday_midnight_local():
    periods = Periods("week", "Europe/Berlin")
    start, end = periods.of(parse_instant("2026-03-29T12:00:00Z"))  # Sunday of the change (02:00 -> 03:00)
    assert (start, end) == (parse_instant("2026-03-22T23:00:00Z"), parse_instant("2026-03-29T22:00:00Z"))
    assert (end - start) // 3_600_000_000 == 167
    assert periods.of(end) == (end, parse_instant("2026-04-05T22:00:00Z"))
    assert periods.of(end - 1)[1] == end
    assert periods.of_date(date(2026, 4, 1)) == periods.of(end)


def test_unknown_period_or_time_zone_is_refused():
    with pytest.raises(PeriodError, match="unknown period"):
        Periods("fortnight")
    with pytest.raises(PeriodError, match="unknown time zone"):
        Periods("day", "Mars/Olympus")
    with pytest.raises(PeriodError, match="unknown time zone"):
        Periods("day", "../../etc/passwd")


def test_span_is_empty_when_last_is_before_first():
    assert Periods("day").span(parse_instant("2026-03-02T00:00:00Z"), parse_instant("2026-03-01T00:00:00Z")) == []
