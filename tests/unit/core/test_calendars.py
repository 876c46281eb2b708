from datetime import date, timedelta

import pytest

from monitor.core.calendars import ALWAYS_OPEN, END, CalendarError, WeeklyCalendar, parse_range
from monitor.core.durations import MAX_US
from monitor.core.instants import MAX_INSTANT
from monitor.core.instants import parse_instant as T

H = 3600 * 1_000_000
OFFICE = {d: [(540, 720), (780, 1080)] for d in range(5)}  # mon-fri 09-12, 13-18


def office(tz="Asia/Shanghai", holidays=()):
    return WeeklyCalendar("office", tz, OFFICE, set(holidays))


def test_ranges_parse_with_24_00_as_end_of_day():
    assert parse_range("09:00-12:00") == (540, 720)
    assert parse_range("00:00-24:00") == (0, 1440)
    for bad in ["9-12", "12:00-09:00", "24:00-24:00", "09:60-10:00", "10:00-25:00", "x"]:
        with pytest.raises(CalendarError):
            parse_range(bad)


def test_working_time_counts_only_office_hours():
    cal = office()
    # Monday 2026-11-23 08:00 to 19:00 local (+08:00): 3h + 5h
    assert cal.working(T("2026-11-23T08:00:00+08:00"), T("2026-11-23T19:00:00+08:00")) == 8 * H
    # across the lunch break
    assert cal.working(T("2026-11-23T11:00:00+08:00"), T("2026-11-23T14:00:00+08:00")) == 2 * H
    # Friday 17:00 to Monday 10:00: 1h + 1h
    assert cal.working(T("2026-11-27T17:00:00+08:00"), T("2026-11-30T10:00:00+08:00")) == 2 * H


def test_used_up_inside_a_period_and_at_its_end():
    cal = office()
    start = T("2026-11-23T09:00:00+08:00")
    assert cal.used_up(start, 2 * H) == T("2026-11-23T11:00:00+08:00")
    # 3h are used up exactly at 12:00, the end of the morning: the crossing is at 13:00
    assert cal.used_up(start, 3 * H) == T("2026-11-23T13:00:00+08:00")
    # a full day is used up at 18:00: the crossing is the next morning at 09:00
    assert cal.used_up(start, 8 * H) == T("2026-11-24T09:00:00+08:00")
    # zero from outside working time: the next opening
    assert cal.used_up(T("2026-11-23T12:30:00+08:00"), 0) == T("2026-11-23T13:00:00+08:00")


def test_friday_1800_before_a_holiday_monday_crosses_on_tuesday_morning():
    cal = office(holidays=[date(2026, 11, 30)])  # Monday
    start = T("2026-11-27T13:00:00+08:00")  # Friday afternoon, 5h until 18:00
    assert cal.used_up(start, 5 * H) == T("2026-12-01T09:00:00+08:00")
    assert cal.working(start, T("2026-12-01T09:00:00+08:00")) == 5 * H
    assert cal.working(start, T("2026-12-01T09:00:01+08:00")) == 5 * H + 1_000_000


def test_dst_week_in_berlin_round_the_clock():
    cal = WeeklyCalendar("berlin", "Europe/Berlin", {d: [(0, 1440)] for d in range(7)}, set())
    # the week containing Sunday 2026-03-29 (clocks go forward): one hour less than 7 x 24
    a, b = T("2026-03-23T00:00:00+01:00"), T("2026-03-30T00:00:00+02:00")
    assert cal.working(a, b) == (7 * 24 - 1) * H == b - a
    # autumn: Sunday 2026-10-25 has 25 hours
    a, b = T("2026-10-25T00:00:00+02:00"), T("2026-10-26T00:00:00+01:00")
    assert cal.working(a, b) == 25 * H


def test_dst_office_hours_are_local():
    cal = WeeklyCalendar("berlin", "Europe/Berlin", OFFICE, set())
    # Friday before the spring change 17:00 CET (16:00Z) + 2h = Monday 10:00 CEST (08:00Z)
    assert cal.used_up(T("2026-03-27T17:00:00+01:00"), 2 * H) == T("2026-03-30T10:00:00+02:00")


def test_always_open():
    assert ALWAYS_OPEN.working(5, 3) == 0
    assert ALWAYS_OPEN.used_up(10, 5) == 15


def test_bad_calendars():
    with pytest.raises(CalendarError):
        WeeklyCalendar("x", "Mars/Olympus", OFFICE, set())
    with pytest.raises(CalendarError):
        WeeklyCalendar("x", "UTC", {}, set())


def test_a_range_boundary_skipped_by_the_spring_change_is_the_instant_of_the_change():
    # Berlin, Sunday 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z); 02:30 never shows on the clock
    night = WeeklyCalendar("night", "Europe/Berlin", {6: [(150, 240)]}, set())
    day = T("2026-03-29T00:00:00+01:00"), T("2026-03-29T12:00:00+02:00")
    assert night.working(*day) == 1 * H  # 03:00 to 04:00 CEST: the clock passed 02:30 at the jump
    assert night.used_up(day[0], 30 * 60 * 1_000_000) == T("2026-03-29T03:30:00+02:00")
    # a range ending in the skipped hour ends at the jump: Sunday 00:00-02:30 is 2 real hours
    early = WeeklyCalendar("early", "Europe/Berlin", {6: [(0, 150)]}, set())
    assert early.working(*day) == 2 * H
    # the repeated hour of the autumn change is worked once more: 02:30 CEST to 04:00 CET is 2.5 real hours
    autumn = T("2026-10-25T00:00:00+02:00"), T("2026-10-25T12:00:00+01:00")
    assert night.working(*autumn) == 150 * 60 * 1_000_000


def test_used_up_has_no_scanning_horizon():
    # 3000 working days of an 8-hour office day: more than eleven years of calendar time (the old scan gave up
    # after ten years with "no working time", a traceback in the replay)
    cal = office()
    start = T("2026-11-23T09:00:00+08:00")
    amount = 3000 * 8 * H
    end = cal.used_up(start, amount)
    assert end > T("2038-01-01T00:00:00Z")
    assert cal.working(start, end) == amount and cal.working(start, end + 1) == amount + 1
    # a year of holidays is as valid as any: the deadline is after it
    year = {date(2027, 1, 1) + timedelta(days=i) for i in range(365)}
    closed_2027 = office(holidays=year)
    assert closed_2027.used_up(T("2026-12-31T17:00:00+08:00"), 2 * H) == T("2028-01-03T10:00:00+08:00")


def test_an_amount_not_used_up_before_year_10000_ends_at_END():
    # one minute a week: 100 years of working time would take millennia past 9999; no supported `now` reaches END
    sparse = WeeklyCalendar("sparse", "Europe/Berlin", {0: [(540, 541)]}, set())
    assert sparse.used_up(T("9700-01-01T00:00:00Z"), MAX_US) == END
    assert END == MAX_INSTANT + 1


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "Etc/GMT+12", "Europe/Berlin"])
def test_working_time_at_the_end_of_year_9999_has_no_date_overflow(tz):
    cal = WeeklyCalendar("all", tz, {d: [(0, 1440)] for d in range(7)}, set())
    a = T("9999-12-25T00:00:00Z")
    assert 0 < cal.working(a, MAX_INSTANT) <= MAX_INSTANT - a
    assert cal.used_up(a, MAX_US) == END
    assert office(tz).used_up(T("9999-12-31T23:00:00Z"), H) == END
