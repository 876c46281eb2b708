"""Calendar periods of reports (CONTRACTS.md section 8): days, weeks and months in a time zone.

A day runs from local midnight to the next; a week from Monday 00:00; a month from the 1st 00:00. A period is
`[start, end)` in integer microseconds (UTC). A local midnight that a clock change skips starts its period at
the change (the first instant whose local date is that day); one that a clock change repeats starts at its
first occurrence.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .instants import MAX_INSTANT, from_datetime, to_datetime

PERIOD_KINDS = ("day", "week", "month")


class PeriodError(ValueError):
    """An unknown period kind or time zone."""


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError; a bad path a ValueError
        raise PeriodError(f"unknown time zone {name!r} (e.g. UTC, Europe/Berlin, Asia/Shanghai)") from None


class Periods:
    """The periods of one kind in one time zone; `of(t)` is the period holding instant `t`."""

    def __init__(self, kind: str, timezone: str = "UTC"):
        if kind not in PERIOD_KINDS:
            raise PeriodError(f"unknown period {kind!r} (one of {', '.join(PERIOD_KINDS)})")
        self.kind = kind
        self.timezone = timezone
        self.zone = zone_of(timezone)
        self._starts: list[int] = []  # the periods found so far, in order (a look-up costs a bisection then)
        self._found: list[tuple[int, int]] = []

    def local_date(self, t: int) -> date:
        try:
            return to_datetime(t).astimezone(self.zone).date()
        except OverflowError:  # the last hours of year 9999 in a zone east of UTC
            return date.max

    def first_day(self, d: date) -> date:
        """The local date a period holding date `d` starts on."""
        if self.kind == "day":
            return d
        if self.kind == "week":
            return d - timedelta(days=d.weekday())
        return d.replace(day=1)

    def _following(self, first: date) -> date:
        if self.kind == "day":
            return first + timedelta(days=1)
        if self.kind == "week":
            return first + timedelta(days=7)
        return date(first.year + first.month // 12, first.month % 12 + 1, 1)

    def start_of_day(self, d: date) -> int:
        """The first instant whose local date is `d`."""
        naive = datetime(d.year, d.month, d.day)
        early = from_datetime(naive.replace(tzinfo=self.zone))  # fold=0: the offset before a change
        late = from_datetime(naive.replace(tzinfo=self.zone, fold=1))  # the offset after it
        if early <= late:  # an ordinary midnight, or one a change repeats (the first occurrence)
            return early
        # midnight is skipped: the change lies in (late, early]; the first instant past it reads date `d`
        return late + bisect_left(range(late, early + 1), d, key=self.local_date)

    def of(self, t: int) -> tuple[int, int]:
        """The period `[start, end)` holding instant `t`."""
        i = bisect_right(self._starts, t) - 1
        if i >= 0 and t < self._found[i][1]:
            return self._found[i]
        first = self.first_day(self.local_date(t))
        try:
            end = self.start_of_day(self._following(first))
        except (OverflowError, ValueError):  # the period holding the end of year 9999
            end = MAX_INSTANT + 1
        period = (self.start_of_day(first), end)
        self._starts.insert(i + 1, period[0])
        self._found.insert(i + 1, period)
        return period

    def of_date(self, d: date) -> tuple[int, int]:
        """The period holding local date `d` (a date a clock change skips whole: the period after it)."""
        return self.of(self.start_of_day(d))

    def span(self, first: int, last: int) -> list[tuple[int, int]]:
        """The periods from the one holding `first` to the one holding `last`, in order."""
        out: list[tuple[int, int]] = []
        if last < first:
            return out
        period = self.of(first)
        while period[0] <= last:
            out.append(period)
            period = self.of(period[1])
        return out
