"""The calendars of `calendars.yaml` (CONTRACTS.md section 3) built from their document, every problem reported with
the file, the field and what is wrong."""

from __future__ import annotations

from datetime import date
from typing import Any

from .calendars import WEEKDAYS, CalendarError, WeeklyCalendar, parse_range
from .problems import Collector


def parse_calendars(doc: Any, source: str, errors: Collector) -> dict[str, WeeklyCalendar]:
    out: dict[str, WeeklyCalendar] = {}
    if doc is None:
        return out
    if not isinstance(doc, dict) or not isinstance(doc.get("calendars"), dict):
        errors.add(source, "calendars", "expected a mapping `calendars:` of calendar names")
        errors.calendars_unreadable = True
        return out
    for name, spec in doc["calendars"].items():
        where = f"calendars.{name}"
        errors.broken_calendars.add(str(name))  # until it is built below
        if not isinstance(spec, dict):
            errors.add(source, where, "expected a mapping with timezone, hours and holidays")
            continue
        tz = spec.get("timezone")
        if not isinstance(tz, str) or not tz:
            errors.add(source, f"{where}.timezone", "missing or not a time zone name (e.g. Europe/Berlin)")
            continue
        hours: dict[int, list[tuple[int, int]]] = {}
        raw_hours = spec.get("hours")
        if not isinstance(raw_hours, dict) or not raw_hours:
            problem = "expected a mapping of weekdays (mon..sun) to ranges"
            errors.add(source, f"{where}.hours", f"no working hours: {problem}" if raw_hours == {} else problem)
            continue
        ok = True
        for day, ranges in raw_hours.items():
            key = str(day).lower()[:3]
            if key not in WEEKDAYS:
                errors.add(source, f"{where}.hours.{day}", "not a weekday (mon, tue, wed, thu, fri, sat, sun)")
                ok = False
                continue
            if isinstance(ranges, str):
                ranges = [ranges]
            if not isinstance(ranges, list):
                errors.add(source, f"{where}.hours.{day}", "expected a list of ranges like \"09:00-18:00\"")
                ok = False
                continue
            for r in ranges:
                try:
                    hours.setdefault(WEEKDAYS.index(key), []).append(parse_range(r))
                except CalendarError as exc:
                    errors.add(source, f"{where}.hours.{day}", str(exc))
                    ok = False
        holidays: set[date] = set()
        raw_holidays = spec.get("holidays") or []
        if not isinstance(raw_holidays, list):
            errors.add(source, f"{where}.holidays", "expected a list of dates like \"2026-10-01\"")
            continue
        for h in raw_holidays:
            try:
                holidays.add(h if isinstance(h, date) else date.fromisoformat(str(h)))
            except ValueError:
                errors.add(source, f"{where}.holidays", f"{h!r} is not a date like 2026-10-01")
                ok = False
        if not ok:
            continue
        try:
            out[str(name)] = WeeklyCalendar(str(name), tz, hours, holidays)
            errors.broken_calendars.discard(str(name))
        except CalendarError as exc:
            field_name = f"{where}.timezone" if "time zone" in str(exc) else f"{where}.hours"
            errors.add(source, field_name, str(exc))
    return out
