"""Business calendars: weekly working hours in a time zone, holidays, exact working time.

Two operations, both exact on integer microseconds:

- `working(a, b)`: working time inside [a, b).
- `used_up(start, amount)`: the instant at which `amount` of working time counted from `start` is used up; when it
  is used up exactly at the end of a working period, the answer is the start of the next working period (the
  latest instant t with working(start, t) == amount). This is the crossing rule of CONTRACTS.md section 1: the
  crossing of a limit L is the earliest instant after which elapsed > L.

There is no scanning horizon: `used_up` looks as far ahead as the amount needs (a limit of years of working time,
a year of holidays). Supported instants end with year 9999 (`instants.MAX_INSTANT`); an amount not used up by
then is used up at `END`, an instant after every supported one: no `now` ever reaches it, so it never crosses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from .instants import MAX_INSTANT, US, from_datetime, to_datetime

_DAY_US = 86400 * US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# The last local date with working time: its ranges end by local 9999-12-30 24:00, which every UTC offset keeps
# inside the dates `datetime` can represent (a later date could need year 10000 on the way to UTC and back).
_LAST_ORDINAL = date(9999, 12, 29).toordinal()
END = MAX_INSTANT + 1  # "not before the end of supported time": later than every instant an event or clock can have

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarError(ValueError):
    """A calendar that cannot be built (bad time zone, range or date), or one that never opens."""


class AlwaysOpen:
    """24x7: every instant is working time."""

    name = "24x7"
    definition = "24x7"

    def working(self, a: int, b: int) -> int:
        return b - a if b > a else 0

    def used_up(self, start: int, amount: int) -> int:
        return start + amount


ALWAYS_OPEN = AlwaysOpen()


class WeeklyCalendar:
    """Weekly working ranges (local minutes of each weekday) in a time zone, with closed local dates."""

    def __init__(self, name: str, timezone: str, hours: dict[int, list[tuple[int, int]]], holidays: set[date]):
        self.name = name
        self.timezone = timezone
        try:
            self.zone = ZoneInfo(timezone)
        except Exception:
            raise CalendarError(f"unknown time zone {timezone!r}") from None
        self.hours = {day: _merge(ranges) for day, ranges in hours.items() if ranges}
        if not self.hours:
            raise CalendarError("no working hours on any weekday")
        self.holidays = frozenset(d.toordinal() for d in holidays)
        self._days: dict[int, tuple[tuple[int, int], ...]] = {}

    @property
    def definition(self) -> tuple:
        """What decides its working time: calendars with equal definitions count alike."""
        return (self.timezone, tuple(sorted((d, tuple(r)) for d, r in self.hours.items())), self.holidays)

    # -- working intervals of one local date, in UTC microseconds (cached per date) --
    def _intervals(self, ordinal: int) -> tuple[tuple[int, int], ...]:
        cached = self._days.get(ordinal)
        if cached is not None:
            return cached
        if ordinal > _LAST_ORDINAL:
            return ()
        day = date.fromordinal(ordinal)
        out: list[tuple[int, int]] = []
        if ordinal not in self.holidays:
            for start_min, end_min in self.hours.get(day.weekday(), ()):
                a = self._local_to_us(day, start_min)
                b = self._local_to_us(day, end_min)
                if b > a:  # a range inside a DST gap can vanish
                    out.append((a, b))
        result = tuple(out)
        if len(self._days) > 20000:
            self._days.clear()
        self._days[ordinal] = result
        return result

    def _local_to_us(self, day: date, minute: int) -> int:
        """The instant the local wall clock reads `minute` on `day`: the first time it does when a clock change
        repeats it, and the instant of the change when a clock change skips it (at 02:30 on a night when 02:00
        jumps to 03:00, the clock passes 02:30 at the jump)."""
        if minute >= 1440:  # 24:00 is the start of the next day
            day = day + timedelta(days=1)
            minute -= 1440
        local = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self.zone)
        before = from_datetime(local)  # fold=0: the offset in force before a change
        after = from_datetime(local.replace(fold=1))  # the offset after it
        if before <= after:  # an ordinary time (equal) or a repeated one (fold=0 is its first occurrence)
            return before
        # skipped: the change happens in (after, before]; find the first instant on the far side of it
        offset_after = local.replace(fold=1).utcoffset()
        lo, hi = after, before
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if to_datetime(mid).astimezone(self.zone).utcoffset() == offset_after:
                hi = mid
            else:
                lo = mid
        return hi

    @staticmethod
    def _first_ordinal(us: int) -> int:
        """A local date at or before the one containing `us`: UTC offsets are under a day, so the local date is
        within one day of the UTC date; two days back also covers a 24:00 range ending on that date."""
        return us // _DAY_US + _EPOCH_ORDINAL - 2

    def working(self, a: int, b: int) -> int:
        if b <= a:
            return 0
        total = 0
        days = self._days
        # (_first_ordinal and the cache hit of _intervals inlined: the replay calls this for every run's end)
        for ordinal in range(a // _DAY_US + _EPOCH_ORDINAL - 2, b // _DAY_US + _EPOCH_ORDINAL + 2):
            intervals = days.get(ordinal)
            if intervals is None:
                intervals = self._intervals(ordinal)
            for x, y in intervals:
                if x >= b:  # intervals come in time order: nothing further can overlap
                    return total
                lo = x if x > a else a
                hi = y if y < b else b
                if hi > lo:
                    total += hi - lo
        return total

    def used_up(self, start: int, amount: int) -> int:
        remaining = amount
        hours = self.hours
        days = self._days
        for ordinal in range(self._first_ordinal(start), _LAST_ORDINAL + 1):
            if (ordinal - 1) % 7 not in hours:  # ordinal 1 (0001-01-01) was a Monday: a closed weekday
                continue
            intervals = days.get(ordinal)
            if intervals is None:
                intervals = self._intervals(ordinal)
            for x, y in intervals:
                if y <= start:
                    continue
                lo = x if x > start else start
                length = y - lo
                if length > remaining:
                    return lo + remaining
                remaining -= length
        return END


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort and merge overlapping or touching ranges of local minutes."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def parse_range(text: object) -> tuple[int, int]:
    """`"09:00-12:00"` -> (540, 720) local minutes; `24:00` is allowed as an end."""
    if not isinstance(text, str) or "-" not in text:
        raise CalendarError(f"{text!r} is not a range like \"09:00-18:00\"")
    left, _, right = text.partition("-")
    a, b = _minute(left.strip(), text), _minute(right.strip(), text)
    if a >= 1440:
        raise CalendarError(f"{text!r}: a range cannot start at 24:00")
    if b <= a:
        raise CalendarError(f"{text!r}: the end must be after the start")
    return a, b


def _minute(hhmm: str, text: str) -> int:
    hh, sep, mm = hhmm.partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit()) or len(mm) != 2 or not 1 <= len(hh) <= 2:
        raise CalendarError(f"{text!r}: {hhmm!r} is not a time like 09:00")
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m):
        raise CalendarError(f"{text!r}: {hhmm!r} is not a time of day (00:00 to 24:00)")
    return h * 60 + m


